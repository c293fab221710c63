import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DataSource, EntityManager } from 'typeorm';
import { ImportedWindowsAutopilotDeviceIdentity } from '../../entities/ImportedWindowsAutopilotDeviceIdentity';
import { ImportedWindowsAutopilotDeviceIdentityUpload } from '../../entities/ImportedWindowsAutopilotDeviceIdentityUpload';
import { InitialSchema1764300000000 } from './migrations/1764300000000-InitialSchema';
import { SerialAndCreatedIndexes1764400000000 } from './migrations/1764400000000-SerialAndCreatedIndexes';
import { Dialect, dialectFor } from './dialect';
import { GraphNamingStrategy } from './naming-strategy';

export const ENTITIES = [ImportedWindowsAutopilotDeviceIdentityUpload, ImportedWindowsAutopilotDeviceIdentity];
/** In order; a new schema change is a new class appended here, never an edit of an applied one. */
export const MIGRATIONS = [InitialSchema1764300000000, SerialAndCreatedIndexes1764400000000];

/** Runs one unit of work at a time. The sqlite driver has a single connection, so transactions must not interleave. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export interface DatabaseOptions {
  /** Run pending migrations on open (DB_MIGRATE). */
  migrate?: boolean;
  /** PostgreSQL pool size (DB_POOL_SIZE). */
  poolSize?: number;
  /** PostgreSQL statement_timeout in ms (DB_STATEMENT_TIMEOUT_MS); a statement over it fails as 503. */
  statementTimeoutMs?: number;
}

export function dataSourceOptions(databaseUrl: string, options: DatabaseOptions = {}) {
  if (databaseUrl.startsWith('sqlite:')) {
    const location = databaseUrl.slice('sqlite:'.length);
    const database = location === ':memory:' ? ':memory:' : resolve(location);
    if (database !== ':memory:') mkdirSync(dirname(database), { recursive: true });
    return {
      type: 'sqlite' as const,
      database,
      entities: ENTITIES,
      migrations: MIGRATIONS,
      // WAL keeps readers of other processes off the writer's back; a busy timeout turns lock waits into waits, not errors.
      enableWAL: database !== ':memory:',
      busyErrorRetry: 2000,
      namingStrategy: new GraphNamingStrategy(),
      logging: false,
    };
  }
  return {
    type: 'postgres' as const,
    url: databaseUrl,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    namingStrategy: new GraphNamingStrategy(),
    logging: false,
    poolSize: options.poolSize ?? 10,
    extra: { statement_timeout: options.statementTimeoutMs ?? 15000, connectionTimeoutMillis: 10000 },
  };
}

/**
 * The persistence boundary: one DataSource, the SQL dialect of its engine, and the two ways in —
 * `read` for single statements and `write` for transactions (serialised on SQLite).
 */
export class Database {
  readonly dialect: Dialect;
  private readonly queue: SerialQueue | undefined;

  constructor(readonly dataSource: DataSource) {
    this.dialect = dialectFor(dataSource.options.type);
    this.queue = dataSource.options.type === 'sqlite' ? new SerialQueue() : undefined;
  }

  static async open(databaseUrl: string, options: DatabaseOptions = {}): Promise<Database> {
    const migrate = options.migrate ?? true;
    const dataSource = new DataSource(dataSourceOptions(databaseUrl, options));
    await dataSource.initialize();
    const db = new Database(dataSource);
    if (dataSource.options.type === 'sqlite') {
      await dataSource.query('PRAGMA busy_timeout = 5000');
      await dataSource.query('PRAGMA synchronous = NORMAL');
    }
    if (migrate) await dataSource.runMigrations({ transaction: 'each' });
    return db;
  }

  /** Reads through the same queue as writes on SQLite, so no read ever sees a transaction's uncommitted rows. */
  read<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    const run = () => fn(this.dataSource.manager);
    return this.queue ? this.queue.run(run) : run();
  }

  write<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    const run = () => this.dataSource.transaction(fn);
    return this.queue ? this.queue.run(run) : run();
  }

  /**
   * Claims up to `limit` rows of `table` matching `where` for the calling transaction: on PostgreSQL with
   * `FOR UPDATE SKIP LOCKED`, so background workers in several instances never take the same row; on SQLite the
   * write queue already gives one transaction at a time. The seam the import worker builds on.
   */
  async claim(manager: EntityManager, table: string, where: string, params: unknown[], limit: number): Promise<string[]> {
    const lock = this.dialect.name === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
    const rows: { id: string }[] = await manager.query(
      `SELECT "id" FROM "${table}" WHERE ${where} ORDER BY "id" LIMIT ${Math.max(1, Math.floor(limit))}${lock}`,
      params,
    );
    return rows.map((r) => r.id);
  }

  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
