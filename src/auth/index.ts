import { Logger } from 'pino';
import { AuthConfig, Config } from '../config';
import { createAuthenticator } from './authenticate';
import { anonymous, Authenticate } from './caller';
import { withThrottling } from './throttle';
import { localSecret, mintToken } from './tokens';

export interface AuthSetup {
  authenticate: Authenticate;
  /** The HS256 secret in use (configured or generated), when there is one. */
  secret?: string;
}

/** The secret used to mint and verify local tokens: AUTH_SECRET, or one generated under ./data (mode 0600). */
export function signingSecret(auth: AuthConfig): string | undefined {
  if (auth.mode === 'secret') return auth.secret;
  if (auth.mode === 'local') return localSecret(auth.secretFile);
  return undefined;
}

/** Assembles authentication and throttling from the configuration. */
export function setupAuth(config: Config, logger?: Logger): AuthSetup {
  if (config.auth.mode === 'disabled') {
    logger?.warn('AUTH_DISABLED is set: every request is accepted as tenant "default" with full access');
    return { authenticate: withThrottling(anonymous, config.throttle) };
  }
  const secret = signingSecret(config.auth);
  const authenticate = createAuthenticator({
    secret,
    jwks: config.auth.jwks,
    audience: config.auth.audience,
    issuer: config.auth.issuer,
  });
  return { authenticate: withThrottling(authenticate, config.throttle), secret };
}

export { mintToken };
