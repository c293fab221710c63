import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Client, ClientConfig, Pool, PoolClient } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { ImportedWindowsAutopilotDeviceIdentity } from '../../entities/ImportedWindowsAutopilotDeviceIdentity';
import { ImportedWindowsAutopilotDeviceIdentityUpload } from '../../entities/ImportedWindowsAutopilotDeviceIdentityUpload';
import { ImportedWindowsAutopilotDeviceIdentityState } from '../../entities/ImportedWindowsAutopilotDeviceIdentityState';
import { WindowsAutopilotDeviceIdentity } from '../../entities/WindowsAutopilotDeviceIdentity';
import { WindowsAutopilotSettings } from '../../entities/WindowsAutopilotSettings';
import { adaptColumnsTo } from '../../entities/column-types';
import { InitialSchema1764300000000 } from './migrations/1764300000000-InitialSchema';
import { SerialAndCreatedIndexes1764400000000 } from './migrations/1764400000000-SerialAndCreatedIndexes';
import { UploadStatusIndex1764500000000 } from './migrations/1764500000000-UploadStatusIndex';
import { UploadStatusTriggers1764600000000 } from './migrations/1764600000000-UploadStatusTriggers';
import { DropRedundantIndexes1764700000000 } from './migrations/1764700000000-DropRedundantIndexes';
import { UploadStatusTriggersPostgres1764800000000 } from './migrations/1764800000000-UploadStatusTriggersPostgres';
import { RegisteredDevices1764900000000 } from './migrations/1764900000000-RegisteredDevices';
import { CheaperUploadStatusTriggers1765000000000 } from './migrations/1765000000000-CheaperUploadStatusTriggers';
import { UploadDeviceCounts1765100000000 } from './migrations/1765100000000-UploadDeviceCounts';
import { ODataError } from '../odata/errors';
import { DatabaseFailure, Dialect, dialectFor, quote } from './dialect';
import { GraphNamingStrategy } from './naming-strategy';

/** The parts of node-sqlite3 that `Database.run` uses (the driver TypeORM opened). */
interface SqliteStatement {
  all(params: unknown[], cb: (err: Error | null, rows: Record<string, unknown>[]) => void): void;
  run(params: unknown[], cb: (this: { changes: number }, err: Error | null) => void): void;
  finalize(cb: () => void): void;
}
interface SqliteConnection {
  prepare(sql: string, cb: (err: Error | null) => void): SqliteStatement;
}

export const ENTITIES = [
  ImportedWindowsAutopilotDeviceIdentityUpload,
  ImportedWindowsAutopilotDeviceIdentity,
  WindowsAutopilotDeviceIdentity,
  WindowsAutopilotSettings,
];
/** In order; a new schema change is a new class appended here, never an edit of an applied one. */
export const MIGRATIONS = [
  InitialSchema1764300000000,
  SerialAndCreatedIndexes1764400000000,
  UploadStatusIndex1764500000000,
  UploadStatusTriggers1764600000000,
  DropRedundantIndexes1764700000000,
  UploadStatusTriggersPostgres1764800000000,
  RegisteredDevices1764900000000,
  CheaperUploadStatusTriggers1765000000000,
  UploadDeviceCounts1765100000000,
];

/**
 * The sqlite driver has a single connection, so a transaction must never interleave with other statements: reads
 * share the connection with each other, a write transaction has it to itself. FIFO, so writers do not starve.
 */
export class ReadWriteLock {
  private readers = 0;
  private writing = false;
  private readonly waiting: { write: boolean; grant: () => void }[] = [];

  async run<T>(write: boolean, fn: () => Promise<T>): Promise<T> {
    await this.acquire(write);
    try {
      return await fn();
    } finally {
      if (write) this.writing = false;
      else this.readers--;
      this.drain();
    }
  }

  private acquire(write: boolean): Promise<void> {
    if (this.waiting.length === 0 && this.canGrant(write)) {
      this.take(write);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push({ write, grant: resolve }));
  }

  private canGrant(write: boolean): boolean {
    return write ? !this.writing && this.readers === 0 : !this.writing;
  }

  private take(write: boolean) {
    if (write) this.writing = true;
    else this.readers++;
  }

  private drain() {
    while (this.waiting.length > 0 && this.canGrant(this.waiting[0].write)) {
      const next = this.waiting.shift()!;
      this.take(next.write);
      next.grant();
    }
  }
}

/**
 * TypeORM calls `sqlite3.verbose()`, which wraps every statement call in a long-stack-trace shim that builds an
 * Error and util.inspect()s all arguments (every bound Buffer included) — most of the driver's CPU on bulk inserts.
 * Handing TypeORM the module with a `verbose` that returns it unchanged keeps the plain driver.
 */
function sqlite3WithoutTrace(): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sqlite3 = require('sqlite3') as object;
  return Object.assign(Object.create(sqlite3) as object, { verbose: () => sqlite3 });
}

export interface DatabaseOptions {
  /** Run pending migrations on open (DB_MIGRATE). */
  migrate?: boolean;
  /** PostgreSQL pool size (DB_POOL_SIZE). */
  poolSize?: number;
  /** PostgreSQL statement_timeout in ms (DB_STATEMENT_TIMEOUT_MS); a statement over it fails as 503. */
  statementTimeoutMs?: number;
  /** SQLITE_SYNCHRONOUS (default full): whether a SQLite commit is synced to disk before it is acknowledged. */
  sqliteSynchronous?: 'full' | 'normal';
}

/** Attempts of a transaction PostgreSQL rolled back to resolve a deadlock or serialization failure. */
const MAX_ATTEMPTS = 10;

/** Retry-After (seconds) of a 503: contention the waits did not resolve clears fast; an unreachable database takes longer. */
const RETRY_AFTER_S: Record<Exclude<DatabaseFailure, 'retry'>, number> = { busy: 1, unavailable: 5 };

/**
 * The 503 of a database failure the client may retry. The cause is kept for the log, never sent. A connection lost
 * during COMMIT leaves the outcome unknown, so the message promises nothing about what was written.
 */
function unavailableError(failure: DatabaseFailure, cause: unknown): ODataError {
  const reason = failure === 'unavailable' ? 'unavailable' : 'busy';
  const message = reason === 'busy' ? 'The service is busy; retry the request.' : 'The database is unavailable; retry the request later.';
  return new ODataError('ServiceUnavailable', message, undefined, undefined, cause).withHeader('Retry-After', String(RETRY_AFTER_S[reason]));
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * node-postgres reports a dropped connection as an 'error' event on its client, and an 'error' event nobody listens
 * to ends the process. pg-pool stops listening to a client it hands out, and TypeORM starts only a microtask later
 * (and stops after the first error), so an error in between is fatal (a stop/start stress run of PostgreSQL lost
 * the service process once). Every client listens for its whole life; the query in flight fails by itself and the
 * pool discards the client.
 */
export class ListeningClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}

/**
 * How many SQL texts Database.run keeps prepared: on SQLite in its statement cache (emptied when full), on PostgreSQL
 * as named statements on each pooled connection.
 */
const MAX_PREPARED = 256;
/**
 * Statements with more parameters run unnamed: bulk inserts and key lists, whose text changes with their length, would
 * fill the names up with shapes seldom seen twice, and their planning is little beside their execution.
 */
const MAX_PREPARED_PARAMETERS = 64;

/** How long a PostgreSQL connection may take to open, and a request may wait for a free pooled one. */
export const CONNECTION_TIMEOUT_MS = 10000;

/** How much longer than statement_timeout the client waits for an answer before it gives up on the server. */
const QUERY_TIMEOUT_MARGIN_MS = 5000;

export function dataSourceOptions(databaseUrl: string, options: DatabaseOptions = {}) {
  adaptColumnsTo(dialectFor(databaseUrl), [...ENTITIES, ImportedWindowsAutopilotDeviceIdentityState]);
  if (databaseUrl.startsWith('sqlite:')) {
    const location = databaseUrl.slice('sqlite:'.length);
    const database = location === ':memory:' ? ':memory:' : resolve(location);
    if (database !== ':memory:') mkdirSync(dirname(database), { recursive: true });
    return {
      type: 'sqlite' as const,
      database,
      driver: sqlite3WithoutTrace(),
      entities: ENTITIES,
      migrations: MIGRATIONS,
      // WAL keeps readers of other processes off the writer's back; a busy timeout turns lock waits into waits, not errors.
      enableWAL: database !== ':memory:',
      busyErrorRetry: 2000,
      namingStrategy: new GraphNamingStrategy(),
      logging: false,
    };
  }
  const statementTimeoutMs = options.statementTimeoutMs ?? 15000;
  return {
    type: 'postgres' as const,
    url: databaseUrl,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    namingStrategy: new GraphNamingStrategy(),
    logging: false,
    poolSize: options.poolSize ?? 10,
    extra: {
      statement_timeout: statementTimeoutMs,
      // The server enforces statement_timeout; a server that stops answering (frozen, or the network gone silent)
      // cannot, so the client gives up a little later by itself.
      query_timeout: statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS,
      connectionTimeoutMillis: CONNECTION_TIMEOUT_MS,
      Client: ListeningClient,
    },
  };
}

/** The transaction an `atomic` block opened, which every database call made inside the block joins. */
interface Ambient {
  manager: EntityManager;
  /** Run once the transaction has committed; dropped when it rolls back. */
  afterCommit: (() => void)[];
}

/**
 * The persistence boundary: one DataSource, the SQL dialect of its engine, and the ways in — `read` for single
 * statements, `writeOne` for one atomic statement, `write` for transactions (serialised on SQLite) — and `atomic`,
 * which makes every call of those three inside it part of one transaction (a batch's atomicity group).
 */
export class Database {
  readonly dialect: Dialect;
  private readonly lock: ReadWriteLock | undefined;
  private readonly ambient = new AsyncLocalStorage<Ambient>();

  constructor(readonly dataSource: DataSource) {
    this.dialect = dialectFor(dataSource.options.type);
    this.lock = this.dialect.singleConnection ? new ReadWriteLock() : undefined;
  }

  static async open(databaseUrl: string, options: DatabaseOptions = {}): Promise<Database> {
    const migrate = options.migrate ?? true;
    const dataSource = new DataSource(dataSourceOptions(databaseUrl, options));
    await dataSource.initialize();
    const db = new Database(dataSource);
    for (const statement of db.dialect.sessionSetup({ sqliteSynchronous: options.sqliteSynchronous ?? 'full' })) await dataSource.query(statement);
    if (migrate) await dataSource.runMigrations({ transaction: 'each' });
    return db;
  }

  /** Reads never run inside another request's open transaction on SQLite, so they never see uncommitted rows. */
  read<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    const open = this.ambient.getStore();
    if (open) return fn(open.manager);
    const run = () => fn(this.dataSource.manager);
    return this.guard(() => (this.lock ? this.lock.run(false, run) : run()));
  }

  /**
   * One write statement, atomic by itself, outside any transaction: on SQLite it holds the write lock only for that
   * statement; on PostgreSQL it runs in autocommit on a pooled connection. For compare-and-set updates.
   */
  writeOne<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    const open = this.ambient.getStore();
    if (open) return fn(open.manager);
    if (this.lock) return this.guard(() => this.exclusive(() => fn(this.dataSource.manager)));
    return this.guard(() => fn(this.dataSource.manager), true);
  }

  /** One transaction; inside `atomic`, part of the atomic block's transaction instead. */
  write<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    const open = this.ambient.getStore();
    return open ? fn(open.manager) : this.transaction(fn);
  }

  /**
   * Runs `fn` as one transaction: every `read`, `write` and `writeOne` it makes (however deep, through
   * AsyncLocalStorage) uses this transaction's manager, so all of it commits or none of it does, and its reads see its
   * own writes. On SQLite the block holds the write lock throughout (its reads take no lock of their own, so they
   * cannot wait on it); on PostgreSQL it keeps one connection. A nested `atomic` joins the outer one.
   */
  async atomic<T>(fn: () => Promise<T>): Promise<T> {
    if (this.ambient.getStore()) return fn();
    const afterCommit: (() => void)[] = [];
    const result = await this.transaction((manager) => {
      afterCommit.length = 0; // a transaction PostgreSQL rolled back runs again: only the last run's hooks count
      return this.ambient.run({ manager, afterCommit }, fn);
    });
    for (const hook of afterCommit) hook();
    return result;
  }

  /** Runs `hook` once what has been written is committed: now, or when the enclosing `atomic` block commits (never if it rolls back). */
  afterCommit(hook: () => void): void {
    const open = this.ambient.getStore();
    if (open) open.afterCommit.push(hook);
    else hook();
  }

  /**
   * One transaction. On SQLite the write lock already gives it the single connection to itself, so BEGIN/COMMIT go
   * through the prepared-statement cache instead of TypeORM's transaction machinery (a third of a PATCH's time).
   * BEGIN IMMEDIATE takes the file's write lock first: a deferred BEGIN that read before writing fails at once with
   * SQLITE_BUSY when another process committed in between, without waiting. On PostgreSQL a transaction rolled back
   * by a deadlock or serialization failure runs again (`fn` must touch nothing but the database).
   */
  private transaction<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (!this.lock) return this.guard(() => this.dataSource.transaction(fn), true);
    return this.guard(() =>
      this.exclusive(async () => {
        const manager = this.dataSource.manager;
        await this.run(manager, 'BEGIN IMMEDIATE', []);
        try {
          const result = await fn(manager);
          await this.run(manager, 'COMMIT', []);
          return result;
        } catch (err) {
          await this.run(manager, 'ROLLBACK', []).catch(() => undefined);
          throw err;
        }
      }),
    );
  }

  /**
   * Ready to serve: the database answers (/ready). On SQLite, after a write failed for want of the file (another
   * process's lock, a full disk), also that a write transaction can begin again. Throws the 503 of the failure.
   */
  ready(): Promise<void> {
    return this.guard(async () => {
      if (!this.lock) {
        await this.dataSource.query('SELECT 1');
        return;
      }
      const manager = this.dataSource.manager;
      await this.lock.run(false, () => this.run(manager, 'SELECT count(*) AS n FROM sqlite_schema', []));
      if (this.writesFailing) {
        await this.exclusive(async () => {
          await this.run(manager, 'BEGIN IMMEDIATE', []);
          await this.run(manager, 'ROLLBACK', []);
        });
      }
    });
  }

  /**
   * Runs a database operation; a failure the client may retry becomes a 503 with Retry-After (its cause logged, never
   * sent), and with `retry` an operation PostgreSQL rolled back to break a deadlock runs again, so plain contention is
   * never refused.
   */
  private async guard<T>(op: () => Promise<T>, retry = false): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        if (err instanceof ODataError) throw err;
        const failure = this.dialect.failureOf(err);
        if (failure === 'retry' && retry && attempt < MAX_ATTEMPTS) {
          await pause(attempt * (5 + Math.random() * 20));
          continue;
        }
        if (failure) throw unavailableError(failure, err);
        throw err;
      }
    }
  }

  /** Counts the SQLite writes that found the file locked by another process past busy_timeout. */
  private lockouts = 0;
  private lastLockout: unknown;
  /** A SQLite write failed for want of the file and none has succeeded since (/ready then probes a write). */
  private writesFailing = false;

  /**
   * A SQLite write under the in-process write lock. Writes queued behind one that found the file locked by another
   * process past busy_timeout fail with it rather than each waiting out busy_timeout in turn: a request waits at most
   * about twice busy_timeout for a locked database, however many are queued.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const seen = this.lockouts;
    return this.lock!.run(true, async () => {
      if (this.lockouts !== seen) throw this.lastLockout;
      try {
        const result = await fn();
        this.writesFailing = false;
        return result;
      } catch (err) {
        const failure = this.dialect.failureOf(err);
        if (failure === 'busy') {
          this.lockouts++;
          this.lastLockout = err;
        }
        if (failure) this.writesFailing = true;
        throw err;
      }
    });
  }

  /**
   * `claim` for a queue: claims up to `limit` rows of `table` matching `where` for the calling transaction, in
   * `orderBy` order, and returns their `columns` and, as `<column>Length`, the byte lengths of the `lengths` columns
   * (a blob's size without reading it) (FOR UPDATE SKIP LOCKED on PostgreSQL, as `claim`). The import
   * worker's seam: the oldest due devices first. Column names are the caller's constants, never request input.
   */
  async claimRows(
    manager: EntityManager,
    table: string,
    columns: readonly string[],
    where: string,
    params: unknown[],
    orderBy: readonly string[],
    limit: number,
    lengths: readonly string[] = [],
  ): Promise<Record<string, unknown>[]> {
    const list = (names: readonly string[]) => names.map(quote).join(', ');
    const selected = [list(columns), ...lengths.map((c) => `length(${quote(c)}) AS ${quote(`${c}Length`)}`)].join(', ');
    const sql = `SELECT ${selected} FROM ${quote(table)} WHERE ${where} ORDER BY ${list(orderBy)} LIMIT ${Math.max(1, Math.floor(limit))}${this.dialect.skipLocked}`;
    return (await this.run(manager, sql, params)).rows;
  }

  private readonly statements = new Map<string, SqliteStatement>();

  /**
   * Runs one fixed-shape statement (the hot paths: by-key reads and writes). TypeORM hands SQL text to the sqlite
   * driver, which prepares it anew on every call; here SQLite statements are prepared once and reused. `affected`
   * counts the rows a DML statement changed. Inside `write`, pass its manager so the statement joins the transaction.
   */
  async run(manager: EntityManager, sql: string, params: unknown[]): Promise<{ rows: Record<string, unknown>[]; affected: number }> {
    this.dataSource.logger.logQuery(sql, params); // as TypeORM's own runner does; the logger decides whether to print
    if (!this.dialect.singleConnection) return this.runPostgres(manager, sql, params);
    let statement = this.statements.get(sql);
    if (!statement) {
      if (this.statements.size >= MAX_PREPARED) await this.finalizeStatements();
      const connection = (this.dataSource.driver as unknown as { databaseConnection: SqliteConnection }).databaseConnection;
      // With a callback, a failed prepare reaches the statement's own callbacks instead of an unhandled 'error' event.
      statement = connection.prepare(sql, () => undefined);
      this.statements.set(sql, statement);
    }
    // A DML statement with RETURNING yields rows like a SELECT; its rows are the ones it changed.
    const returning = / RETURNING /.test(sql);
    const select = returning || /^\s*SELECT/i.test(sql);
    const prepared = statement;
    const forget = () => {
      // A statement that failed (say, its prepare) is not reused, and is finalized: one that failed with SQLITE_BUSY
      // still holds its read transaction, whose snapshot turns every later write of this connection into SQLITE_BUSY
      // once another process has committed — the service would never write again.
      if (this.statements.get(sql) !== prepared) return;
      this.statements.delete(sql);
      prepared.finalize(() => undefined);
    };
    return new Promise((resolve, reject) => {
      if (select)
        prepared.all(params, (err, rows) => {
          if (err) {
            forget();
            reject(err);
          } else resolve({ rows, affected: returning ? rows.length : 0 });
        });
      else
        prepared.run(params, function (this: { changes: number }, err: Error | null) {
          if (err) {
            forget();
            reject(err);
          } else resolve({ rows: [], affected: this.changes });
        });
    });
  }

  /** Names of the PostgreSQL statements prepared so far, by SQL text. */
  private readonly prepared = new Map<string, string>();

  /**
   * PostgreSQL: each statement runs as a named prepared statement on its pooled connection (pg prepares it there once,
   * so the server parses and plans it once per connection, not per call). At most MAX_PREPARED texts of at most
   * MAX_PREPARED_PARAMETERS parameters get a name, so a stream of differently shaped queries cannot grow every
   * connection's statement cache; the rest run unnamed.
   */
  private async runPostgres(manager: EntityManager, sql: string, params: unknown[]): Promise<{ rows: Record<string, unknown>[]; affected: number }> {
    let name = this.prepared.get(sql);
    if (name === undefined && this.prepared.size < MAX_PREPARED && params.length <= MAX_PREPARED_PARAMETERS) this.prepared.set(sql, (name = `s${this.prepared.size + 1}`));
    const query = async (client: PoolClient) => {
      const result = await client.query({ name, text: sql, values: params });
      return { rows: result.rows as Record<string, unknown>[], affected: result.rowCount ?? 0 };
    };
    // Inside a transaction, on its connection; otherwise straight from the pool (the pool drops a client that broke).
    if (manager.queryRunner) return query((await manager.queryRunner.connect()) as PoolClient);
    const client = await (this.dataSource.driver as unknown as { master: Pool }).master.connect();
    try {
      return await query(client);
    } finally {
      client.release();
    }
  }

  private async finalizeStatements(): Promise<void> {
    const all = [...this.statements.values()];
    this.statements.clear();
    await Promise.all(all.map((st) => new Promise<void>((resolve) => st.finalize(() => resolve()))));
  }

  async close(): Promise<void> {
    await this.finalizeStatements();
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
