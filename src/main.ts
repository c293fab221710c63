import 'reflect-metadata';
import pino from 'pino';
import { ConfigError, loadConfig } from './config';
import { Database } from './db/database';
import { describeSimulation } from './http/simulation';
import { createApp } from './server';
import { mintToken, setupAuth } from './auth';

async function main() {
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
  const auth = setupAuth(config, logger);
  const app = createApp(config, db, logger, auth.authenticate);
  await new Promise<void>((resolve) => app.server.listen(config.port, config.host, resolve));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host}:${port}${config.basePath}`;
  logger.info({ url, database: config.databaseUrl.replace(/\/\/[^@]*@/, '//***@') }, 'listening');
  let banner = `\nGraph-compatible Autopilot import service listening on ${url}\n`;
  if (config.auth.mode === 'local' && auth.secret) {
    const token = await mintToken(auth.secret, { tenant: 'default', scope: 'write', expiresIn: '12h' });
    banner +=
      `\nA read-write token for tenant "default" (12 h; more with: npm run token -- --tenant T --scope read|write):\n\n` +
      `  export TOKEN=${token}\n\n` +
      `  curl -H "Authorization: Bearer $TOKEN" ${url}/deviceManagement/importedWindowsAutopilotDeviceIdentities\n`;
  } else if (config.auth.mode === 'disabled') {
    banner += `\nAuthentication is DISABLED (AUTH_DISABLED=1).\n  curl ${url}/deviceManagement/importedWindowsAutopilotDeviceIdentities\n`;
  }
  const simulation = describeSimulation(config.simulation);
  if (simulation) {
    logger.warn({ simulation: config.simulation }, simulation);
    banner += `\n${simulation}\n`;
  }
  console.log(banner);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
    // Stop accepting, let in-flight requests finish, then close the pool; past the timeout, cut the connections.
    const force = setTimeout(() => app.server.closeAllConnections(), config.shutdownTimeoutMs);
    force.unref();
    app.server.closeIdleConnections();
    app.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  console.error('Failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
