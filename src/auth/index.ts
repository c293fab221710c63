import { Logger } from 'pino';
import { AuthConfig, Config } from '../config';
import { createAuthenticator } from './authenticate';
import { anonymous, Authenticate } from './caller';
import { createThrottle } from './throttle';
import { localSecret, mintToken } from './tokens';

export interface AuthSetup {
  authenticate: Authenticate;
  /** The HS256 secret in use (configured or generated), when there is one. */
  secret?: string;
  /** Closes the throttling store's connections; after the server has closed. */
  close(): Promise<void>;
}

/** The secret used to mint and verify local tokens: AUTH_SECRET, or one generated under ./data (mode 0600). */
export function signingSecret(auth: AuthConfig): string | undefined {
  if (auth.mode === 'secret') return auth.secret;
  if (auth.mode === 'local') return localSecret(auth.secretFile);
  return undefined;
}

/** Assembles authentication and throttling from the configuration; rejects when the throttling store does not answer. */
export async function setupAuth(config: Config, logger?: Logger): Promise<AuthSetup> {
  let secret: string | undefined;
  let authenticate: Authenticate;
  if (config.auth.mode === 'disabled') {
    logger?.warn('AUTH_DISABLED is set: every request is accepted as tenant "default" with full access');
    authenticate = anonymous;
  } else {
    secret = signingSecret(config.auth);
    authenticate = createAuthenticator({
      secret,
      jwks: config.auth.jwks,
      audience: config.auth.audience,
      issuer: config.auth.issuer,
    });
  }
  const throttle = await createThrottle(config.throttle, logger);
  return { authenticate: throttle.wrap(authenticate), secret, close: () => throttle.close() };
}

export { mintToken };
