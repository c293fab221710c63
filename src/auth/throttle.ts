import Redis from 'ioredis';
import { Pool } from 'pg';
import type { Logger } from 'pino';
import { IRateLimiterOptions, RateLimiterAbstract, RateLimiterMemory, RateLimiterPostgres, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { redact, type Rate, type ThrottleConfig } from '../config';
import { ODataError } from '../odata/errors';
import type { Authenticate } from './caller';

/** A shared store slower than this counts as unreachable for that request (the request is then counted in memory). */
export const STORE_TIMEOUT_MS = 1000;

/** The PostgreSQL table of the counters (THROTTLE_STORE=postgres), in the schema DATABASE_URL points at. */
export const THROTTLE_TABLE = 'throttle_counters';

/**
 * Per-tenant throttling after authentication (SPEC §4): a fixed window per tenant and kind (reads, writes) that opens
 * with the tenant's first request; over the limit → 429 TooManyRequests with Retry-After until the window ends.
 */
export interface Throttle {
  /** Authenticates, then counts the request against the caller's tenant. */
  wrap(authenticate: Authenticate): Authenticate;
  /** Closes the store's connections (Redis client, PostgreSQL pool). */
  close(): Promise<void>;
}

interface Limit {
  /** Where the counters live; shared by every instance on a shared store. */
  store: RateLimiterAbstract;
  /** This instance's own counters, used while the shared store does not answer. */
  fallback?: RateLimiterMemory;
}

const options = (rate: Rate, keyPrefix: string): IRateLimiterOptions => ({ points: rate.count, duration: rate.seconds, keyPrefix });

/**
 * Builds the limits on the configured store. A shared store must answer at start (the process stops otherwise, like
 * for an unreachable database); later outages do not fail requests: each instance then counts alone in memory.
 */
export async function createThrottle(config: ThrottleConfig, logger?: Logger): Promise<Throttle> {
  const memory = (rate: Rate, kind: string) => new RateLimiterMemory(options(rate, `throttle:${kind}`));
  let reads: Limit;
  let writes: Limit;
  let close = async () => {};
  const outage = outageLog(logger);

  if (config.store.kind === 'memory') {
    reads = { store: memory(config.reads, 'reads') };
    writes = { store: memory(config.writes, 'writes') };
  } else if (config.store.kind === 'redis') {
    let started = false;
    const client = new Redis(config.store.url, {
      lazyConnect: true,
      // No retries for the first connection (the start fails instead); after it, reconnect every 50 ms to 2 s.
      retryStrategy: (attempt) => (started ? Math.min(attempt * 50, 2000) : null),
      // Fail at once while disconnected instead of queueing: the request is then counted in memory.
      enableOfflineQueue: false,
      commandTimeout: STORE_TIMEOUT_MS,
      connectTimeout: 5000,
      maxRetriesPerRequest: 0,
    });
    let firstError: Error | undefined;
    client.on('error', (err) => (started ? outage.down(err) : (firstError ??= err)));
    try {
      await client.connect();
      started = true;
    } catch (err) {
      throw new Error(`THROTTLE_STORE ${redact(config.store.url)} does not answer: ${(firstError ?? (err as Error)).message}`, { cause: err });
    }
    const redis = (rate: Rate, kind: string) =>
      new RateLimiterRedis({ ...options(rate, `autopilot:throttle:${kind}`), storeClient: client, rejectIfRedisNotReady: true });
    reads = { store: redis(config.reads, 'reads'), fallback: memory(config.reads, 'reads') };
    writes = { store: redis(config.writes, 'writes'), fallback: memory(config.writes, 'writes') };
    close = async () => {
      await client.quit().catch(() => client.disconnect());
    };
  } else {
    // A small pool of its own on the service's database, so a burst of requests never waits behind data queries.
    const pool = new Pool({ connectionString: config.store.databaseUrl, max: 4, connectionTimeoutMillis: STORE_TIMEOUT_MS, query_timeout: STORE_TIMEOUT_MS });
    pool.on('error', (err) => outage.down(err));
    let stores: [RateLimiterPostgres, RateLimiterPostgres];
    try {
      const { rows } = await pool.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [THROTTLE_TABLE]);
      // The first instance creates the table (CREATE on the schema is needed once); the library owns its layout.
      const writesStore = await postgresLimiter(pool, config.writes, 'writes', rows[0].present);
      stores = [await postgresLimiter(pool, config.reads, 'reads', true), writesStore];
    } catch (err) {
      await pool.end();
      throw new Error(`THROTTLE_STORE=postgres cannot use table ${THROTTLE_TABLE}: ${(err as Error).message}`, { cause: err });
    }
    reads = { store: stores[0], fallback: memory(config.reads, 'reads') };
    writes = { store: stores[1], fallback: memory(config.writes, 'writes') };
    close = () => pool.end();
  }

  /** 0 when the request may go on, else the milliseconds until the tenant's window ends. */
  async function consume(limit: Limit, tenantId: string): Promise<number> {
    const waitOf = (res: RateLimiterRes) => Math.max(res.msBeforeNext, 1);
    try {
      await limit.store.consume(tenantId);
    } catch (err) {
      if (!(err instanceof RateLimiterRes) && limit.fallback) {
        outage.down(err as Error);
        return limit.fallback.consume(tenantId).then(() => 0, waitOf);
      }
      if (!(err instanceof RateLimiterRes)) throw err;
      outage.up();
      return waitOf(err);
    }
    outage.up();
    return 0;
  }

  return {
    wrap: (authenticate) => async (req, write) => {
      const caller = await authenticate(req, write);
      const wait = await consume(write ? writes : reads, caller.tenantId);
      if (wait > 0) {
        const retryAfter = Math.max(1, Math.ceil(wait / 1000));
        throw new ODataError('TooManyRequests', `Too many ${write ? 'write' : 'read'} requests for this tenant; retry after ${retryAfter} s.`).withHeader(
          'Retry-After',
          String(retryAfter),
        );
      }
      return caller;
    },
    close,
  };
}

function postgresLimiter(pool: Pool, rate: Rate, kind: string, tableCreated: boolean): Promise<RateLimiterPostgres> {
  // Both limits share the table; one of them deleting expired rows every 5 minutes is enough.
  const opts = { ...options(rate, `throttle:${kind}`), storeClient: pool, storeType: 'pool', tableName: THROTTLE_TABLE, tableCreated, clearExpiredByTimeout: kind === 'writes' };
  // The constructor calls back synchronously when the table exists, and after creating it otherwise.
  if (tableCreated) return Promise.resolve(new RateLimiterPostgres(opts));
  return new Promise((resolve, reject) => {
    const limiter: RateLimiterPostgres = new RateLimiterPostgres(opts, (err?: Error) => (err ? reject(err) : setImmediate(() => resolve(limiter))));
  });
}

/** Logs an outage of the shared store once when it starts and once when it ends, not once per request. */
function outageLog(logger: Logger | undefined) {
  let down = false;
  return {
    down(err: Error) {
      if (down) return;
      down = true;
      logger?.warn({ err }, 'throttling store unreachable: each instance counts its own requests in memory until it answers');
    },
    up() {
      if (!down) return;
      down = false;
      logger?.info('throttling store answers again: limits are shared again');
    },
  };
}
