import 'reflect-metadata';
import pino from 'pino';
import { ConfigError, loadConfig } from './config';
import { Database } from './db/database';
import { describeSimulation } from './http/simulation';
import { createApp } from './server';
import { drainOnShutdown } from './shutdown';
import { mintToken, setupAuth } from './auth';
import { DOCS_PATH } from './http/docs';
import { ensureSelfSignedCertificate, SelfSignedCertificate } from './http/tls';
import { keepHeapSmall } from './heap';

async function main() {
  keepHeapSmall();
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = pino({ level: config.logLevel });
  const db = await Database.open(config.databaseUrl, {
    migrate: config.migrate,
    poolSize: config.dbPoolSize,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    sqliteSynchronous: config.sqliteSynchronous,
  });
  const auth = await setupAuth(config, logger);
  let selfSigned: SelfSignedCertificate | undefined;
  if (config.tls?.selfSigned) selfSigned = await ensureSelfSignedCertificate(config.tls);
  const app = createApp(config, db, logger, auth.authenticate);
  const drain = drainOnShutdown(app.server);
  // Before listening and the banner: a SIGTERM the moment the banner is out (a supervisor, a test) shuts down gracefully.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    // Stop accepting, let in-flight requests finish (each closing its connection), then close the pool; past the
    // timeout, cut the connections.
    const force = setTimeout(() => app.server.closeAllConnections(), config.shutdownTimeoutMs);
    force.unref();
    drain();
    app.close().then(() => auth.close()).then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await new Promise<void>((resolve) => app.server.listen(config.port, config.host, resolve));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // A wildcard bind is reached through loopback on this machine (and that is what a self-signed certificate names).
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const origin = `${config.tls ? 'https' : 'http'}://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
  const url = `${origin}${config.basePath}`;
  logger.info({ url, database: config.databaseUrl.replace(/\/\/[^@]*@/, '//***@') }, 'listening');
  let banner = `\nGraph-compatible Autopilot import service listening on ${url}\n`;
  banner += `API page: ${origin}${DOCS_PATH} (OpenAPI document: ${url}/$openapi)\n`;
  let curl = 'curl';
  if (selfSigned) {
    const made = selfSigned.generated ? `made a self-signed certificate${selfSigned.replaced ? ` (the old one: ${selfSigned.replaced})` : ''}` : 'using the self-signed certificate';
    banner +=
      `\nHTTPS: ${made} for localhost, 127.0.0.1 and ::1, valid until ${selfSigned.validTo.toISOString().slice(0, 10)}:\n` +
      `  ${selfSigned.certFile}\n  SHA-256 ${selfSigned.fingerprint}\n` +
      `Trust it in Node.js clients with\n\n  export NODE_EXTRA_CA_CERTS=${selfSigned.certFile}\n\n` +
      `and in curl with --cacert (browsers warn until you add it to their trusted certificates).\n`;
    curl = `curl --cacert ${selfSigned.certFile}`;
  }
  if (config.auth.mode === 'local' && auth.secret) {
    const token = await mintToken(auth.secret, { tenant: 'default', scope: 'write', expiresIn: '12h' });
    banner +=
      `\nA read-write token for tenant "default" (12 h; more with: npm run token -- --tenant T --scope read|write):\n\n` +
      `  export TOKEN=${token}\n\n` +
      `  ${curl} -H "Authorization: Bearer $TOKEN" ${url}/deviceManagement/importedWindowsAutopilotDeviceIdentities\n`;
  } else if (config.auth.mode === 'disabled') {
    banner += `\nAuthentication is DISABLED (AUTH_DISABLED=1).\n  ${curl} ${url}/deviceManagement/importedWindowsAutopilotDeviceIdentities\n`;
  }
  const simulation = describeSimulation(config.simulation);
  if (simulation) {
    logger.warn({ simulation: config.simulation }, simulation);
    banner += `\n${simulation}\n`;
  }
  console.log(banner);

}

main().catch((err) => {
  console.error('Failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
