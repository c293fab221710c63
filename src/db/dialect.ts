/**
 * Everything that differs between the two engines, in one place: SQL the query translator writes, placeholders,
 * locking, and how the driver reports contention. Nothing else asks which engine it is on.
 */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /**
   * The driver has one connection (sqlite3): statements share it under a read/write lock and are prepared once by
   * Database.run; otherwise a pool serves them.
   */
  readonly singleConnection: boolean;
  /** Statements run once on a freshly opened database. */
  sessionSetup(settings: SessionSettings): string[];
  /**
   * What a failed statement means for its request: `retry` — the engine rolled the transaction back to resolve
   * contention (deadlock, serialization failure), so running it again is safe; `busy` — contention not resolved within
   * the engine's waits; `unavailable` — the database cannot be reached or written. Undefined: a real error.
   */
  failureOf(err: unknown): DatabaseFailure | undefined;
  /** The n-th (1-based) parameter; the same n may appear more than once in a statement. */
  placeholder(n: number): string;
  /** Appended to a SELECT that locks the rows it reads for the rest of the transaction ('' where the write lock already serialises). */
  readonly forUpdate: string;
  /** Appended to a SELECT that claims rows no other transaction holds (background workers in several instances). */
  readonly skipLocked: string;
  /** `LIMIT` value meaning "no limit", for an OFFSET without a LIMIT. */
  readonly noLimit: number | null;
  /** How many parameters one statement may bind (SQLITE_MAX_VARIABLE_NUMBER of SQLite 3.32+; PostgreSQL's wire protocol). */
  readonly maxParameters: number;
  /**
   * A statement that makes every other transaction taking the same keys wait until this one ends: `$1` an int key
   * space, `$2` a text array of keys, locked in one global order (no deadlock). Undefined where the engine's single
   * writer already serialises (SQLite).
   */
  readonly lockKeysSql: string | undefined;
  /** Null-safe equality. */
  same(a: string, b: string): string;
  /** The larger of an expression and 0. */
  atLeastZero(x: string): string;
  /** 0-based position of `needle` in `haystack`, -1 when absent (OData indexof). */
  indexOf(haystack: string, needle: string): string;
  /** true when `value` ends with `suffix`. */
  endsWith(value: string, suffix: string): string;
  /** A calendar part of an epoch-milliseconds column, in UTC. */
  datePart(part: 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second', epochMs: string): string;
  /** The column type of Edm.Binary values. */
  readonly binaryType: string;
  /** The database clock in epoch milliseconds (the default of `storedAt`; SQLite ≥ 3.42 for unixepoch('subsec')). */
  readonly nowEpochMs: string;
  /** The collation that orders strings byte-wise (SQLite's default), if the engine needs one named. */
  readonly bytewiseCollation: string | undefined;
}

export type DatabaseFailure = 'retry' | 'busy' | 'unavailable';

export interface SessionSettings {
  /** SQLITE_SYNCHRONOUS: `full` syncs the WAL at every commit, `normal` only at checkpoints. */
  sqliteSynchronous: 'full' | 'normal';
}

/** How long a SQLite statement waits for another connection's lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** The codes of an error and of the errors it wraps (TypeORM's QueryFailedError, AggregateError, `cause`). */
function codesOf(err: unknown, depth = 0): { codes: string[]; messages: string[] } {
  const out = { codes: [] as string[], messages: [] as string[] };
  if (!err || typeof err !== 'object' || depth > 3) return out;
  const e = err as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string') out.codes.push(e.code);
  if (typeof e.message === 'string') out.messages.push(e.message);
  for (const inner of [e.driverError, e.cause, ...(Array.isArray(e.errors) ? (e.errors as unknown[]) : [])]) {
    const found = codesOf(inner, depth + 1);
    out.codes.push(...found.codes);
    out.messages.push(...found.messages);
  }
  return out;
}

/** Socket errors of a client-server database: the server is down or unreachable. */
const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** Identifier quoting, the same on both engines. */
export const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

const SQLITE_PARTS = { year: '%Y', month: '%m', day: '%d', hour: '%H', minute: '%M', second: '%S' } as const;

const sqlite: Dialect = {
  name: 'sqlite',
  singleConnection: true,
  sessionSetup: (settings) => [
    `PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`,
    // WAL (TypeORM's enableWAL): a commit survives a process crash whatever the setting; FULL syncs the WAL at every
    // commit, so it also survives an OS crash or power loss; NORMAL syncs only at checkpoints, so the last commits
    // before one may roll back (SQLite docs, "PRAGMA synchronous").
    `PRAGMA synchronous = ${settings.sqliteSynchronous === 'normal' ? 'NORMAL' : 'FULL'}`,
    // 16 MB of page cache (the default is 2 MB): the indexes of 100,000 devices then stay in memory.
    'PRAGMA cache_size = -16384',
    // Temporary data in memory: a multi-row INSERT inside a transaction keeps a statement journal (to undo just that
    // statement), which SQLite spills to a temporary file past 64 KiB — an upload of 500 devices is some 350 KiB.
    'PRAGMA temp_store = MEMORY',
  ],
  failureOf(err) {
    const { codes } = codesOf(err);
    // The single connection never deadlocks with itself; BUSY/LOCKED are another process's lock held past busy_timeout.
    if (codes.some((c) => c === 'SQLITE_BUSY' || c === 'SQLITE_LOCKED')) return 'busy';
    // The file cannot be opened, read or written (permissions, a full or read-only disk, I/O errors).
    if (codes.some((c) => ['SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_IOERR', 'SQLITE_FULL', 'SQLITE_PROTOCOL'].includes(c))) return 'unavailable';
    return undefined;
  },
  // Numbered, so one parameter can stand in several places (ScopedTable.insert).
  placeholder: (n) => `?${n}`,
  forUpdate: '',
  skipLocked: '',
  noLimit: -1,
  maxParameters: 32766,
  lockKeysSql: undefined,
  same: (a, b) => `(${a} IS ${b})`,
  atLeastZero: (x) => `max(${x}, 0)`,
  indexOf: (h, n) => `(instr(${h}, ${n}) - 1)`,
  endsWith: (v, s) => `(substr(${v}, -length(${s})) = ${s} OR length(${s}) = 0)`,
  datePart: (part, col) => `CAST(strftime('${SQLITE_PARTS[part]}', ${col} / 1000, 'unixepoch') AS INTEGER)`,
  binaryType: 'blob',
  nowEpochMs: "(CAST(unixepoch('subsec') * 1000 AS INTEGER))",
  bytewiseCollation: undefined,
};

const postgres: Dialect = {
  name: 'postgres',
  singleConnection: false,
  sessionSetup: () => [],
  failureOf(err) {
    const { codes, messages } = codesOf(err);
    // Deadlock and serialization failures: PostgreSQL rolled the transaction back; it may run again.
    if (codes.some((c) => c === '40P01' || c === '40001')) return 'retry';
    // Connection exceptions (class 08), the server shutting down or starting (57P01-57P03), out of disk or I/O (53100, 58030).
    if (codes.some((c) => NETWORK_ERRORS.has(c) || c.startsWith('08') || ['57P01', '57P02', '57P03', '53100', '58030'].includes(c))) return 'unavailable';
    // node-postgres reports a lost, timed-out or silent connection by message only; TypeORM releases the query runner
    // of a connection that failed, so the transaction's next statement finds it released.
    if (messages.some((m) => /Connection terminated|connection timeout|not queryable|Connection ended|query runner (was )?already released|Query read timeout/i.test(m))) return 'unavailable';
    // Statement timeout, lock not available, too many connections, the pool's wait for a free connection.
    if (codes.some((c) => ['57014', '55P03', '53300', '53000', '53200'].includes(c))) return 'busy';
    if (messages.some((m) => /timeout exceeded when trying to connect/i.test(m))) return 'busy';
    return undefined;
  },
  placeholder: (n) => `$${n}`,
  forUpdate: ' FOR UPDATE',
  skipLocked: ' FOR UPDATE SKIP LOCKED',
  noLimit: null,
  maxParameters: 65535,
  lockKeysSql: 'SELECT pg_advisory_xact_lock($1, k) FROM (SELECT DISTINCT hashtext(s) AS k FROM unnest($2::text[]) AS s ORDER BY k) AS keys',
  same: (a, b) => `(${a} IS NOT DISTINCT FROM ${b})`,
  atLeastZero: (x) => `GREATEST(${x}, 0)`,
  indexOf: (h, n) => `(strpos(${h}, ${n}) - 1)`,
  endsWith: (v, s) => `(right(${v}, length(${s})) = ${s})`,
  datePart: (part, col) =>
    `CAST(floor(EXTRACT(${part.toUpperCase()} FROM to_timestamp(${col} / 1000.0) AT TIME ZONE 'UTC')) AS INTEGER)`,
  binaryType: 'bytea',
  nowEpochMs: 'CAST(floor(EXTRACT(EPOCH FROM statement_timestamp()) * 1000) AS bigint)',
  bytewiseCollation: 'C',
};

/** The dialect of a TypeORM driver type or a DATABASE_URL. */
export function dialectFor(typeOrUrl: string): Dialect {
  if (typeOrUrl === 'sqlite' || typeOrUrl.startsWith('sqlite:')) return sqlite;
  if (typeOrUrl === 'postgres' || /^postgres(ql)?:/.test(typeOrUrl)) return postgres;
  throw new Error(`Unsupported database ${typeOrUrl}`);
}
