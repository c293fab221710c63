import { IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, JSONWebKeySet, JWTPayload, jwtVerify, JWTVerifyGetKey } from 'jose';
import { ODataError } from '../odata/errors';
import type { Authenticate, Caller } from './caller';
import { READ_SCOPE, WRITE_SCOPE } from './tokens';

/**
 * Bearer-token authentication like Graph's (SPEC §4 Security): a JWT verified with jose — HS256 with a shared secret,
 * or RS256/ES256 against a JWKS file or URL — whose `tid` claim partitions all data and whose `scp` (delegated,
 * space-separated) or `roles` (application) carry the DeviceManagementServiceConfig permissions.
 */
export interface AuthOptions {
  secret?: string;
  /** A JWKS file path or an https/http URL. */
  jwks?: string;
  audience?: string;
  issuer?: string;
}

const unauthenticated = (message: string, error?: string) =>
  new ODataError('InvalidAuthenticationToken', message).withHeader(
    'WWW-Authenticate',
    error ? `Bearer realm="graph", error="${error}"` : 'Bearer realm="graph"',
  );

const forbidden = (message: string) => new ODataError('Authorization_RequestDenied', message);

function permissions(payload: JWTPayload): Set<string> {
  const granted = new Set<string>();
  if (typeof payload.scp === 'string') for (const s of payload.scp.split(' ')) if (s) granted.add(s);
  if (Array.isArray(payload.roles)) for (const r of payload.roles) if (typeof r === 'string') granted.add(r);
  return granted;
}

export function createAuthenticator(options: AuthOptions): Authenticate {
  let key: Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  if (options.jwks) {
    algorithms = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384'];
    key = /^https?:\/\//.test(options.jwks)
      ? createRemoteJWKSet(new URL(options.jwks))
      : createLocalJWKSet(JSON.parse(readFileSync(options.jwks, 'utf8')) as JSONWebKeySet);
  } else if (options.secret) {
    algorithms = ['HS256'];
    key = new TextEncoder().encode(options.secret);
  } else {
    throw new Error('createAuthenticator needs a secret or a JWKS');
  }

  // Verified tokens, until they expire: clients send the same token on every request, and verifying it again
  // each time (key import, HMAC or RSA) was a measurable share of a cheap request's CPU.
  const verified = new Map<string, { payload: JWTPayload; until: number }>();
  const MAX_CACHED = 10000;

  return async (req: { headers: IncomingHttpHeaders }, write: boolean): Promise<Caller> => {
    const header = req.headers.authorization;
    if (!header) throw unauthenticated('Access token is empty.');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw unauthenticated('The Authorization header must be "Bearer <token>".', 'invalid_request');
    const cached = verified.get(match[1]);
    const now = Date.now() / 1000;
    if (cached && cached.until > now) return authorize(cached.payload, write);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1], key as Uint8Array, {
        algorithms,
        audience: options.audience,
        issuer: options.issuer,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthenticated('Lifetime validation failed, the token is expired.', 'invalid_token');
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        throw unauthenticated(`Access token validation failure: the '${err.claim}' claim is not accepted.`, 'invalid_token');
      }
      throw unauthenticated('Access token validation failure. Invalid audience, issuer, signature or format.', 'invalid_token');
    }
    const caller = authorize(payload, write);
    if (typeof payload.exp === 'number') {
      if (verified.size >= MAX_CACHED) verified.delete(verified.keys().next().value!);
      verified.set(match[1], { payload, until: payload.exp });
    }
    return caller;
  };

  function authorize(payload: JWTPayload, write: boolean): Caller {
    if (typeof payload.tid !== 'string' || payload.tid === '' || payload.tid.length > 128) {
      throw unauthenticated("The access token has no 'tid' (tenant) claim.", 'invalid_token');
    }
    const granted = permissions(payload);
    const allowed = write ? granted.has(WRITE_SCOPE) : granted.has(READ_SCOPE) || granted.has(WRITE_SCOPE);
    if (!allowed) {
      throw forbidden(
        `Insufficient privileges to complete the operation: ${write ? WRITE_SCOPE : `${READ_SCOPE} or ${WRITE_SCOPE}`} is required.`,
      );
    }
    return { tenantId: payload.tid };
  }
}
