import 'reflect-metadata';
import pino from 'pino';
import { ConfigError, loadConfig } from './config';
import { Database } from './db/database';
import { createApp } from './server';

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
  const db = await Database.open(config.databaseUrl, config.migrate);
  const app = createApp(config, db, logger);
  await new Promise<void>((resolve) => app.server.listen(config.port, config.host, resolve));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host}:${port}${config.basePath}`;
  logger.info({ url, database: config.databaseUrl.replace(/\/\/[^@]*@/, '//***@') }, 'listening');
  console.log(`\nGraph-compatible Autopilot import service listening on ${url}\n  try: curl ${url}/deviceManagement/importedWindowsAutopilotDeviceIdentities\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    app.server.closeIdleConnections?.();
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
