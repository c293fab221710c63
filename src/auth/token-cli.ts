import { ConfigError, loadConfig } from '../config';
import { signingSecret } from './index';
import { mintToken } from './tokens';

/** `npm run token -- --tenant T --scope read|write [--roles] [--expires 12h]`: prints a token for the local secret. */
async function main(argv: string[]) {
  const arg = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const tenant = arg('tenant') ?? 'default';
  const scope = arg('scope') ?? 'write';
  if (scope !== 'read' && scope !== 'write') throw new ConfigError(`--scope must be read or write, got '${scope}'`);
  const config = loadConfig();
  const secret = signingSecret(config.auth);
  if (!secret) throw new ConfigError('Tokens can only be minted with AUTH_SECRET or the generated local secret (not with AUTH_JWKS or AUTH_DISABLED).');
  const token = await mintToken(secret, {
    tenant,
    scope,
    application: argv.includes('--roles'),
    expiresIn: arg('expires') ?? '12h',
    audience: config.auth.audience,
    issuer: config.auth.issuer,
  });
  process.stdout.write(`${token}\n`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : err);
  process.exit(2);
});
