import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import pino from 'pino';
import { startImportWorker } from '../src/autopilot/import-worker';
import { aDevice } from './fixtures/devices';
import { spawnService, ServiceProcess } from './support/process';
import { dropSchema, freshDatabaseUrl, LIVE, query, startService, TestService, token, UPLOADS } from './support/service';

/**
 * Writes that touch the same rows at once (issue 12). Unconditional writes take turns — last writer wins — and are
 * never refused, however many arrive together and whichever instance they reach; only a stale If-Match fails (412).
 * 503 is for real outages (test/outage.test.ts), never for plain contention.
 */
const onPostgres = () => process.env.DATABASE_URL?.startsWith('postgres') ?? false;
const REGISTERED = 'deviceManagement/windowsAutopilotDeviceIdentities';

/** The answers outside `allowed`, with their bodies (a 5xx shows its error). */
const unexpected = (responses: { status: number; text: string }[], allowed: number[]) =>
  responses.filter((r) => !allowed.includes(r.status)).map((r) => `${r.status} ${r.text.slice(0, 120)}`);

/** Resolves once `n` of the requests have been answered. */
function answers(requests: Promise<unknown>[], n: number): Promise<void> {
  let answered = 0;
  return new Promise((resolve) => {
    if (n === 0) resolve();
    for (const request of requests) request.then(() => ++answered === n && resolve(), () => ++answered === n && resolve());
  });
}

const etagVersion = (etag: string) => Number(/^W\/"(\d+)"$/.exec(etag)?.[1]);

describe('one service', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(() => service.close());

  async function newDevice(serialNumber: string) {
    const res = await service.request('POST', LIVE, { body: aDevice({ serialNumber }) });
    expect(res.status).toBe(201);
    return { id: res.body.id as string, url: `${LIVE}/${res.body.id}`, etag: res.body['@odata.etag'] as string };
  }

  it('100 parallel PATCHes without If-Match to one device: all 200, each wrote its own version, the last one is stored', async () => {
    // arrange
    const device = await newDevice('C-100');

    // act
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => service.request('PATCH', device.url, { body: { groupTag: `g-${i}`, orderIdentifier: `o-${i}` } })),
    );
    const stored = await service.get(device.url);

    // assert: every write answered 200 with its own body; their ETags are the 100 versions after the first, once each
    expect(results.map((r) => r.status)).toEqual(Array(100).fill(200));
    results.forEach((r, i) => expect([r.body.groupTag, r.body.orderIdentifier]).toEqual([`g-${i}`, `o-${i}`]));
    const versions = results.map((r) => etagVersion(r.body['@odata.etag'])).sort((a, b) => a - b);
    const first = etagVersion(device.etag);
    expect(versions).toEqual(Array.from({ length: 100 }, (_, i) => first + 1 + i));
    // the stored entity is the body of the write that took the last version, whole (never a mix of two bodies)
    const last = results.find((r) => r.body['@odata.etag'] === stored.body['@odata.etag'])!;
    expect(etagVersion(stored.body['@odata.etag'])).toBe(first + 100);
    expect(stored.body.groupTag).toBe(last.body.groupTag);
    expect(stored.body.orderIdentifier).toBe(last.body.orderIdentifier);
  });

  it('30 parallel PATCHes with the same current If-Match: one 200, 29 × 412 PreconditionFailed, the winner stored', async () => {
    // arrange
    const device = await newDevice('C-IFMATCH');

    // act
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => service.request('PATCH', device.url, { body: { groupTag: `m-${i}` }, headers: { 'If-Match': device.etag } })),
    );

    // assert
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, ...Array(29).fill(412)]);
    results.filter((r) => r.status === 412).forEach((r) => expect(r.body.error.code).toBe('PreconditionFailed'));
    const winner = results.find((r) => r.status === 200)!;
    const stored = await service.get(device.url);
    expect(stored.body.groupTag).toBe(winner.body.groupTag);
    expect(etagVersion(stored.body['@odata.etag'])).toBe(etagVersion(device.etag) + 1);
  });

  it('parallel PATCHes, PUTs and DELETEs of one device never answer 5xx; one DELETE wins and the device is gone', async () => {
    for (let round = 0; round < 5; round++) {
      // arrange
      const device = await newDevice(`C-MIX-${round}`);

      // act: 30 PATCHes, 10 PUTs and 3 DELETEs, the DELETEs let in after the first answers
      const writes = [
        ...Array.from({ length: 30 }, (_, i) => service.request('PATCH', device.url, { body: { groupTag: `p-${i}` } })),
        ...Array.from({ length: 10 }, (_, i) => service.request('PUT', device.url, { body: aDevice({ serialNumber: `C-MIX-${round}`, groupTag: `r-${i}` }) })),
      ];
      await Promise.race(writes);
      const deletes = Array.from({ length: 3 }, () => service.request('DELETE', device.url));
      const [written, deleted] = await Promise.all([Promise.all(writes), Promise.all(deletes)]);

      // assert
      expect(unexpected(written, [200, 404])).toEqual([]);
      expect(deleted.map((r) => r.status).sort()).toEqual([204, 404, 404]);
      expect((await service.get(device.url)).status).toBe(404);
    }
  });

  it("writes to an upload's devices racing the upload's DELETE never answer 5xx, and no device outlives its upload", async () => {
    const serials: string[] = [];
    for (let round = 0; round < 10; round++) {
      // arrange: an upload with 5 devices
      const serial = (name: string) => {
        serials.push(`R${round}-${name}`);
        return `R${round}-${name}`;
      };
      const created = await service.request('POST', UPLOADS, { body: { deviceIdentities: [0, 1, 2, 3, 4].map((i) => aDevice({ serialNumber: serial(`d${i}`) })) } });
      expect(created.status).toBe(201);
      const upload = `${UPLOADS}/${created.body.id}`;
      const devices: string[] = created.body.deviceIdentities.map((d: { id: string }) => d.id);

      // act: every kind of write into the upload at once, and its DELETE among them
      const writes = [
        ...devices.map((id) => service.request('PATCH', `${upload}/deviceIdentities/${id}`, { body: { groupTag: 'patched' } })),
        ...devices.map((id) => service.request('PUT', `${upload}/deviceIdentities/${id}`, { body: aDevice({ serialNumber: serial(`put-${id}`) }) })),
        ...[0, 1, 2].map((i) => service.request('POST', `${upload}/deviceIdentities`, { body: aDevice({ serialNumber: serial(`post${i}`) }) })),
        ...[0, 1].map((i) =>
          service.request('POST', `${upload}/deviceIdentities/import`, {
            body: { importedWindowsAutopilotDeviceIdentities: [0, 1, 2].map((j) => aDevice({ serialNumber: serial(`imp${i}-${j}`) })) },
          }),
        ),
        service.request('PATCH', `${upload}/deviceIdentities`, {
          body: { '@context': '#$delta', value: [{ id: devices[0], groupTag: 'delta' }, { id: devices[1], groupTag: 'delta' }, aDevice({ serialNumber: serial('delta') })] },
        }),
      ];
      // the DELETE goes in after a different number of answers each round, to land at different points of the stream
      await answers(writes, round);
      const [written, deleted] = await Promise.all([Promise.all(writes), service.request('DELETE', upload)]);

      // assert: each write either happened before the DELETE or found the upload (or device) gone
      expect(deleted.status).toBe(204);
      expect(unexpected(written, [200, 201, 404])).toEqual([]);
      expect((await service.get(upload)).status).toBe(404);
    }

    // assert: no device of a deleted upload is left for the import worker to register
    const worker = startImportWorker(service.app.db, pino({ level: 'silent' }), { delayMs: 0, batchSize: 500, pollMs: 25 });
    await worker.drain();
    await worker.stop();
    const registered = await service.get(`${REGISTERED}?${query({ $filter: `startswith(serialNumber,'R')`, $count: 'true', $top: 0 })}`);
    expect(registered.status).toBe(200);
    expect({ registered: registered.body['@odata.count'], of: serials.length }).toEqual({ registered: 0, of: serials.length });
  }, 60000);
});

(onPostgres() ? describe : describe.skip)('a PATCH that PostgreSQL rolls back to break a deadlock', () => {
  let url: string;
  let service: TestService;
  let other: Client;
  beforeAll(async () => {
    url = await freshDatabaseUrl();
    service = await startService({}, url);
    other = new Client({ connectionString: url });
    await other.connect();
  });
  afterAll(async () => {
    await other.end();
    await service.close();
  });

  it('runs again and answers 200', async () => {
    // arrange: a device whose import status change locks its upload (by trigger), and another session that holds the
    // upload and will wait for the device. That session checks for deadlocks after 10 s, the service's after 1 s
    // (PostgreSQL's default), so the service's transaction is the one rolled back.
    const created = await service.request('POST', UPLOADS, { body: { deviceIdentities: [aDevice({ serialNumber: 'C-DEADLOCK' })] } });
    const device = `${UPLOADS}/${created.body.id}/deviceIdentities/${created.body.deviceIdentities[0].id}`;
    await other.query('BEGIN');
    await other.query(`SET LOCAL deadlock_timeout = '10s'`);
    await other.query(`SELECT 1 FROM "importedWindowsAutopilotDeviceIdentityUpload" WHERE "id" = $1 FOR UPDATE`, [created.body.id]);

    // act: the PATCH locks the device and waits for the upload; then the other session asks for the device
    const patch = service.request('PATCH', device, { body: { groupTag: 'service', state: { deviceImportStatus: 'complete' } } });
    for (let i = 0; i < 200; i++) {
      const { rows } = await other.query(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()`);
      if (rows[0].n > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await other.query(`UPDATE "importedWindowsAutopilotDeviceIdentity" SET "groupTag" = 'other' WHERE "id" = $1`, [created.body.deviceIdentities[0].id]);
    await other.query('COMMIT');
    const res = await patch;

    // assert: the PATCH was not refused, and as it committed last its values are stored
    expect([res.status, res.body.error?.code]).toEqual([200, undefined]);
    const stored = await service.get(device);
    expect([stored.body.groupTag, stored.body.state.deviceImportStatus]).toEqual(['service', 'complete']);
  });
});

describe('two service processes on one database', () => {
  let url: string;
  let a: ServiceProcess;
  let b: ServiceProcess;

  beforeAll(async () => {
    url = onPostgres() ? await freshDatabaseUrl() : `sqlite:${join(mkdtempSync(join(tmpdir(), 'contention-')), 'db.sqlite')}`;
    a = await spawnService({ DATABASE_URL: url });
    b = await spawnService({ DATABASE_URL: url, DB_MIGRATE: 'false' });
  }, 60000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await dropSchema(url);
  });

  async function call(root: string, method: string, path: string, body?: unknown) {
    const res = await fetch(`${root}/${path}`, {
      method,
      headers: { Authorization: `Bearer ${await token()}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
  }

  // SQLite serves one process, but another process on the file (a second instance, `npm run db:migrate`, an
  // operator's sqlite3) must only make writes wait, never fail them.
  it('100 parallel PATCHes without If-Match over both: all 200, the ETag moved 100 times', async () => {
    // arrange
    const created = await call(a.root, 'POST', LIVE, aDevice({ serialNumber: 'C-TWO' }));
    expect(created.status).toBe(201);
    const path = `${LIVE}/${created.body.id}`;

    // act
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => call(i % 2 ? a.root : b.root, 'PATCH', path, { groupTag: `t-${i}` })));
    const onA = await call(a.root, 'GET', path);
    const onB = await call(b.root, 'GET', path);

    // assert
    expect(unexpected(results, [200])).toEqual([]);
    const versions = results.map((r) => etagVersion(r.body['@odata.etag'])).sort((x, y) => x - y);
    expect(versions).toEqual(Array.from({ length: 100 }, (_, i) => 2 + i));
    expect(etagVersion(onA.body['@odata.etag'])).toBe(101);
    expect(onB.body.groupTag).toBe(onA.body.groupTag);
    expect(results.some((r) => r.body.groupTag === onA.body.groupTag && r.body['@odata.etag'] === 'W/"101"')).toBe(true);
  }, 60000);
});
