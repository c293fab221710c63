import 'reflect-metadata';
import { ConfigError, loadConfig } from '../config';
import { Database } from './database';

/** `npm run db:migrate`: applies pending migrations to DATABASE_URL and prints what ran. */
async function main() {
  const config = loadConfig();
  const db = await Database.open(config.databaseUrl, { migrate: false });
  try {
    const ran = await db.dataSource.runMigrations({ transaction: 'each' });
    console.log(ran.length ? `Applied: ${ran.map((m) => m.name).join(', ')}` : 'The schema is up to date.');
  } finally {
    await db.close();
  }
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : `Migration failed: ${err instanceof Error ? err.message : err}`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
