import { randomUUID } from 'node:crypto';
import { connect, createServer, Server, Socket } from 'node:net';
import { aDevice } from './fixtures/devices';
import { ConfigError, loadConfig } from '../src/config';
import { setupAuth } from '../src/auth';
import { freePort } from './support/process';
import { freshDatabaseUrl, LIVE, startService, TestService, token } from './support/service';

/**
 * Throttling shared across instances (THROTTLE_STORE): N instances on one store enforce one per-tenant limit, as Graph
 * does. Needs Redis at TEST_REDIS_URL (default redis://127.0.0.1:6379; .ci/run starts it); the PostgreSQL store is
 * tested in `npm run test:pg`.
 */
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const onPostgres = () => process.env.DATABASE_URL?.startsWith('postgres') ?? false;

/** A tenant no other test (or other run on the same Redis) counts against. */
const aTenant = () => `tenant-${randomUUID()}`;

async function writeAs(service: TestService, tenant: string) {
  return service.request('POST', LIVE, { body: aDevice(), headers: { Authorization: `Bearer ${await token(tenant)}` } });
}

async function countOf(service: TestService, tenant: string): Promise<number> {
  const res = await service.get(`${LIVE}/$count`, { headers: { Authorization: `Bearer ${await token(tenant)}` } });
  return Number(res.text);
}

/** 6 writes to A and 6 to B at once, for one tenant; returns the statuses and the 429 responses. */
async function sixAndSix(a: TestService, b: TestService, tenant: string) {
  const responses = await Promise.all([...Array(6)].flatMap(() => [writeAs(a, tenant), writeAs(b, tenant)]));
  return { statuses: responses.map((r) => r.status).sort(), throttled: responses.filter((r) => r.status === 429) };
}

function expectThrottled(res: { status: number; body: any; headers: Headers }, windowSeconds: number) {
  expect(res.status).toBe(429);
  expect(res.body.error).toMatchObject({ code: 'TooManyRequests', message: expect.stringMatching(/^Too many write requests for this tenant; retry after \d+ s\.$/) });
  expect(res.body.error.innerError['request-id']).toBe(res.headers.get('request-id'));
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= windowSeconds).toBe(true);
}

const ten = (count: number) => [...Array(count).fill(201), ...Array(12 - count).fill(429)];

describe('two instances on one Redis (THROTTLE_STORE=redis://…)', () => {
  let a: TestService;
  let b: TestService;
  beforeAll(async () => {
    a = await startService({ THROTTLE_STORE: REDIS_URL, THROTTLE_WRITES: '10/60' });
    b = await startService({ THROTTLE_STORE: REDIS_URL, THROTTLE_WRITES: '10/60' });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('enforce one limit: of 6 + 6 writes in the window, exactly 10 succeed and 2 get 429', async () => {
    // arrange
    const tenant = aTenant();

    // act
    const { statuses, throttled } = await sixAndSix(a, b, tenant);

    // assert
    expect(statuses).toEqual(ten(10));
    for (const res of throttled) expectThrottled(res, 60);
    expect((await countOf(a, tenant)) + (await countOf(b, tenant))).toBe(10);
    expect((await writeAs(a, aTenant())).status).toBe(201);
  });
});

// The control: the same two instances counting in their own memory let both 6 through, so the test above can fail.
describe('two instances with the memory store (the default)', () => {
  it('each apply the limit alone: all 12 writes succeed', async () => {
    const a = await startService({ THROTTLE_WRITES: '10/60' });
    const b = await startService({ THROTTLE_WRITES: '10/60' });
    try {
      expect((await sixAndSix(a, b, aTenant())).statuses).toEqual(ten(12));
    } finally {
      await a.close();
      await b.close();
    }
  });
});

(onPostgres() ? describe : describe.skip)('two instances on one PostgreSQL database (THROTTLE_STORE=postgres)', () => {
  let a: TestService;
  let b: TestService;
  beforeAll(async () => {
    const url = await freshDatabaseUrl();
    a = await startService({ THROTTLE_STORE: 'postgres', THROTTLE_WRITES: '10/60' }, url);
    b = await startService({ THROTTLE_STORE: 'postgres', THROTTLE_WRITES: '10/60' }, url);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('enforce one limit: of 6 + 6 writes in the window, exactly 10 succeed and 2 get 429', async () => {
    const tenant = aTenant();
    const { statuses, throttled } = await sixAndSix(a, b, tenant);
    expect(statuses).toEqual(ten(10));
    for (const res of throttled) expectThrottled(res, 60);
    expect(await countOf(a, tenant)).toBe(10);
    expect(await countOf(b, tenant)).toBe(10);
  });
});

/** A TCP proxy in front of Redis that the test can take down and bring back, on the same port. */
class RedisProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  /** Connections since the last start() over which Redis has answered. */
  answered = 0;
  port = 0;

  async start(): Promise<void> {
    const upstream = new URL(REDIS_URL);
    this.answered = 0;
    this.port ||= await freePort();
    this.server = createServer((client) => {
      const server = connect(Number(upstream.port || 6379), upstream.hostname);
      let counted = false;
      for (const s of [client, server]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      server.on('data', () => {
        if (!counted) {
          counted = true;
          this.answered++;
        }
      });
      client.pipe(server).pipe(client);
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    const closed = new Promise((resolve) => this.server!.close(resolve));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
}

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
};

describe('when the shared store is unreachable', () => {
  const proxy = new RedisProxy();
  let a: TestService;
  let b: TestService;
  beforeAll(async () => {
    await proxy.start();
    a = await startService({ THROTTLE_STORE: proxy.url, THROTTLE_WRITES: '3/60' });
    b = await startService({ THROTTLE_STORE: proxy.url, THROTTLE_WRITES: '3/60' });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await proxy.stop().catch(() => undefined);
  });

  it('answers every request; each instance counts alone in memory; the shared limit returns with the store', async () => {
    // arrange: Redis goes away
    await proxy.stop();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const tenant = aTenant();

    // act: 4 writes to each instance during the outage, then 2 + 2 after Redis is back
    const duringA = await Promise.all([...Array(4)].map(() => writeAs(a, tenant)));
    const duringB = await Promise.all([...Array(4)].map(() => writeAs(b, tenant)));
    const reads = await Promise.all([a, b].map(async (s) => (await s.get(LIVE, { headers: { Authorization: `Bearer ${await token(tenant)}` } })).status));
    await proxy.start();
    await until(() => proxy.answered >= 2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = aTenant();
    const afterStatuses = (await Promise.all([writeAs(a, after), writeAs(b, after), writeAs(a, after), writeAs(b, after)])).map((r) => r.status).sort();

    // assert
    expect(duringA.map((r) => r.status).sort()).toEqual([201, 201, 201, 429]);
    expect(duringB.map((r) => r.status).sort()).toEqual([201, 201, 201, 429]);
    for (const res of [...duringA, ...duringB].filter((r) => r.status === 429)) expectThrottled(res, 60);
    expect(reads).toEqual([200, 200]);
    expect(afterStatuses).toEqual([201, 201, 201, 429]);
  }, 30000);
});

describe('THROTTLE_STORE at start', () => {
  it.each([
    ['memcached://127.0.0.1:11211', "THROTTLE_STORE must be memory, postgres or redis://host:port[/db], got 'memcached://127.0.0.1:11211'"],
    ['redis://', 'THROTTLE_STORE must be memory, postgres or redis://host:port[/db]'],
    ['redis://127.0.0.1:6379/db', 'THROTTLE_STORE must be memory, postgres or redis://host:port[/db]'],
  ])('refuses %s', (value, message) => {
    expect(() => loadConfig({ THROTTLE_STORE: value })).toThrow(ConfigError);
    expect(() => loadConfig({ THROTTLE_STORE: value })).toThrow(message);
  });

  it('never repeats a password from a refused value', () => {
    expect(() => loadConfig({ THROTTLE_STORE: 'redis://:hunter2@127.0.0.1:6379?x' })).toThrow("got 'redis://:***@127.0.0.1:6379?x'");
  });

  it('refuses postgres on a SQLite database', () => {
    expect(() => loadConfig({ THROTTLE_STORE: 'postgres', DATABASE_URL: 'sqlite::memory:' })).toThrow('THROTTLE_STORE=postgres keeps the counters in the service\'s own database, so DATABASE_URL must be postgres://…');
  });

  it('stops the start when the store does not answer, naming the variable', async () => {
    const port = await freePort();
    const config = loadConfig({ DATABASE_URL: 'sqlite::memory:', AUTH_DISABLED: '1', THROTTLE_STORE: `redis://127.0.0.1:${port}` });
    await expect(setupAuth(config)).rejects.toThrow(`THROTTLE_STORE redis://127.0.0.1:${port} does not answer: connect ECONNREFUSED`);
  });
});
