import { dirname, join } from 'node:path';
import { parseLatency, Simulation } from './http/simulation';
import { TlsConfig, tlsFromEnv } from './http/tls';

/** Configuration from the environment, validated once at start: a bad value stops the process with a clear message. */
export interface Config {
  port: number;
  host: string;
  /** `sqlite:<path>`, `sqlite::memory:` or `postgres://…` */
  databaseUrl: string;
  /** Service root path, `/beta` by default. */
  basePath: string;
  /** Absolute base used in @odata.context and nextLink; by default taken from the request's Host. */
  publicUrl?: string;
  logLevel: string;
  defaultPageSize: number;
  maxPageSize: number;
  migrate: boolean;
  dbPoolSize: number;
  dbStatementTimeoutMs: number;
  /** SQLITE_SYNCHRONOUS: `full` (default) syncs every commit to disk before answering; `normal` only at checkpoints. */
  sqliteSynchronous: 'full' | 'normal';
  /** How long SIGTERM waits for in-flight requests before closing their connections. */
  shutdownTimeoutMs: number;
  /** The import worker: IMPORT_WORKER (on/off), IMPORT_DELAY_MS, IMPORT_BATCH_SIZE, IMPORT_POLL_MS. */
  importWorker: { enabled: boolean; delayMs: number; batchSize: number; pollMs: number };
  /** SYNC_MIN_INTERVAL_S: the shortest time between two Autopilot syncs of a tenant (429 within it). */
  syncMinIntervalS: number;
  /** SYNC_DURATION_MS: how long an Autopilot sync runs (409 to another sync meanwhile). */
  syncDurationMs: number;
  /** FAULT_RATE and LATENCY_MS: simulated faults and latency for clients' resilience tests (off by default). */
  simulation: Simulation;
  /** How long an idle keep-alive connection stays open (node's keepAliveTimeout). */
  keepAliveTimeoutMs: number;
  auth: AuthConfig;
  throttle: ThrottleConfig;
  /** Serve HTTPS: TLS_CERT + TLS_KEY, or HTTPS=1 (a self-signed certificate under the data directory). */
  tls?: TlsConfig;
}

export interface ThrottleConfig {
  reads: Rate;
  writes: Rate;
  /** Where the per-tenant counters live: this process's memory, the service's PostgreSQL database, or Redis. */
  store: { kind: 'memory' } | { kind: 'postgres'; databaseUrl: string } | { kind: 'redis'; url: string };
}

export interface AuthConfig {
  /** `secret`: HS256 with AUTH_SECRET; `jwks`: AUTH_JWKS; `local`: a generated secret in `secretFile`; `disabled`. */
  mode: 'secret' | 'jwks' | 'local' | 'disabled';
  secret?: string;
  jwks?: string;
  audience?: string;
  issuer?: string;
  secretFile: string;
}

export class ConfigError extends Error {}

/** A rate: `count` requests per `seconds`, e.g. Graph's Intune enrollment limit of 200 writes per 20 s per tenant. */
export interface Rate {
  count: number;
  seconds: number;
}

export function parseRate(text: string, name: string): Rate {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new ConfigError(`${name} must look like 200/20 (requests per seconds), got '${text}'`);
  return { count: Number(m[1]), seconds: Number(m[2]) };
}

/** A URL with its password replaced, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:***@');
}

function throttleStore(env: NodeJS.ProcessEnv, databaseUrl: string): ThrottleConfig['store'] {
  const raw = env.THROTTLE_STORE || 'memory';
  if (raw === 'memory') return { kind: 'memory' };
  if (raw === 'postgres') {
    if (!databaseUrl.startsWith('postgres')) {
      throw new ConfigError('THROTTLE_STORE=postgres keeps the counters in the service\'s own database, so DATABASE_URL must be postgres://…');
    }
    return { kind: 'postgres', databaseUrl };
  }
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || !['redis:', 'rediss:'].includes(url.protocol) || !url.hostname || !/^(\/\d*)?$/.test(url.pathname) || url.search || url.hash) {
    throw new ConfigError(`THROTTLE_STORE must be memory, postgres or redis://host:port[/db], got '${redact(raw)}'`);
  }
  return { kind: 'redis', url: raw };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got '${raw}'`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function onOff(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(on|true|1)$/i.test(raw)) return true;
  if (/^(off|false|0)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be on or off, got '${raw}'`);
}

function latency(raw: string | undefined) {
  try {
    return parseLatency(raw);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = env.DATABASE_URL || 'sqlite:./data/autopilot.sqlite';
  if (!/^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(databaseUrl)) {
    throw new ConfigError(`DATABASE_URL must be sqlite:<path>, sqlite::memory: or postgres://…, got '${databaseUrl}'`);
  }
  const basePath = (env.BASE_PATH ?? '/beta').replace(/\/+$/, '');
  if (basePath !== '' && !/^\/[A-Za-z0-9._~\-/]*$/.test(basePath)) {
    throw new ConfigError(`BASE_PATH must be a URL path such as /beta, got '${env.BASE_PATH}'`);
  }
  let publicUrl: string | undefined;
  if (env.PUBLIC_URL) {
    try {
      publicUrl = new URL(env.PUBLIC_URL).origin;
    } catch {
      throw new ConfigError(`PUBLIC_URL must be an absolute URL, got '${env.PUBLIC_URL}'`);
    }
  }
  const logLevel = env.LOG_LEVEL || (env.NODE_ENV === 'test' ? 'silent' : 'info');
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got '${logLevel}'`);
  }
  const maxPageSize = integer(env, 'MAX_PAGE_SIZE', 999, 1, 10000);
  const defaultPageSize = integer(env, 'DEFAULT_PAGE_SIZE', Math.min(100, maxPageSize), 1, maxPageSize);
  const migrateRaw = env.DB_MIGRATE ?? 'true';
  if (!['true', 'false', '1', '0'].includes(migrateRaw)) throw new ConfigError(`DB_MIGRATE must be true or false, got '${migrateRaw}'`);
  const authDisabled = ['1', 'true'].includes(env.AUTH_DISABLED ?? '');
  if (env.AUTH_SECRET !== undefined && env.AUTH_SECRET !== '' && env.AUTH_SECRET.length < 16) {
    throw new ConfigError('AUTH_SECRET must be at least 16 characters');
  }
  const dataDir = databaseUrl.startsWith('sqlite:') && databaseUrl !== 'sqlite::memory:' ? dirname(databaseUrl.slice(7)) : './data';
  const auth: AuthConfig = {
    mode: authDisabled ? 'disabled' : env.AUTH_JWKS ? 'jwks' : env.AUTH_SECRET ? 'secret' : 'local',
    secret: env.AUTH_SECRET || undefined,
    jwks: env.AUTH_JWKS || undefined,
    audience: env.AUTH_AUDIENCE || undefined,
    issuer: env.AUTH_ISSUER || undefined,
    secretFile: env.AUTH_SECRET_FILE || join(dataDir, 'auth-secret'),
  };
  const throttle: Config['throttle'] = {
    reads: parseRate(env.THROTTLE_READS || '2000/20', 'THROTTLE_READS'),
    writes: parseRate(env.THROTTLE_WRITES || '200/20', 'THROTTLE_WRITES'),
    store: throttleStore(env, databaseUrl),
  };
  let tls: TlsConfig | undefined;
  try {
    tls = tlsFromEnv(env, dataDir);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const sqliteSynchronous = (env.SQLITE_SYNCHRONOUS || 'full').toLowerCase();
  if (sqliteSynchronous !== 'full' && sqliteSynchronous !== 'normal') {
    throw new ConfigError(`SQLITE_SYNCHRONOUS must be full or normal, got '${env.SQLITE_SYNCHRONOUS}'`);
  }
  return {
    auth,
    throttle,
    tls,
    port: integer(env, 'PORT', 5000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    databaseUrl,
    basePath,
    publicUrl,
    logLevel,
    defaultPageSize,
    maxPageSize,
    migrate: migrateRaw === 'true' || migrateRaw === '1',
    dbPoolSize: integer(env, 'DB_POOL_SIZE', 10, 1, 1000),
    dbStatementTimeoutMs: integer(env, 'DB_STATEMENT_TIMEOUT_MS', 15000, 1, 3600000),
    sqliteSynchronous,
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10000, 0, 600000),
    importWorker: {
      enabled: onOff(env, 'IMPORT_WORKER', true),
      delayMs: integer(env, 'IMPORT_DELAY_MS', 2000, 0, 3600000),
      batchSize: integer(env, 'IMPORT_BATCH_SIZE', 500, 1, 10000),
      pollMs: integer(env, 'IMPORT_POLL_MS', 1000, 1, 600000),
    },
    syncMinIntervalS: integer(env, 'SYNC_MIN_INTERVAL_S', 600, 0, 86400),
    syncDurationMs: integer(env, 'SYNC_DURATION_MS', 2000, 0, 3600000),
    simulation: { faultRate: integer(env, 'FAULT_RATE', 0, 0, 100), latency: latency(env.LATENCY_MS) },
    keepAliveTimeoutMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 5000, 1, 3600000),
  };
}
