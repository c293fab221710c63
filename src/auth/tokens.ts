import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { SignJWT } from 'jose';

/** Graph's permission names for this API (delegated `scp` and application `roles` alike). */
export const READ_SCOPE = 'DeviceManagementServiceConfig.Read.All';
export const WRITE_SCOPE = 'DeviceManagementServiceConfig.ReadWrite.All';

/** Reads the locally generated HS256 secret, creating it (mode 0600) on first use. */
export function localSecret(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dirname(file), { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}

export interface MintOptions {
  tenant: string;
  scope: 'read' | 'write';
  /** Lifetime, e.g. '8h'. */
  expiresIn?: string;
  audience?: string;
  issuer?: string;
  /** Put the permission in `roles` (application token) instead of `scp` (delegated). */
  application?: boolean;
}

/** Mints an HS256 token shaped like an Entra ID access token: `tid`, and `scp` or `roles`. */
export async function mintToken(secret: string, options: MintOptions): Promise<string> {
  const permission = options.scope === 'write' ? WRITE_SCOPE : READ_SCOPE;
  const claims: Record<string, unknown> = { tid: options.tenant };
  if (options.application) claims.roles = [permission];
  else claims.scp = permission;
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setSubject(`local-${options.scope}`)
    .setExpirationTime(options.expiresIn ?? '12h');
  if (options.audience) jwt = jwt.setAudience(options.audience);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  return jwt.sign(new TextEncoder().encode(secret));
}
