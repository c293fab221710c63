import { connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aDevice } from './fixtures/devices';
import { spawnService, ServiceProcess } from './support/process';
import { dropSchema, freshDatabaseUrl, LIVE, token, UPLOADS } from './support/service';

/**
 * Several stateless instances on one PostgreSQL database behave as one service (SPEC §1 scale-out); these run in
 * `npm run test:pg`. Graceful shutdown is tested on whichever engine the run uses.
 */
const onPostgres = () => process.env.DATABASE_URL?.startsWith('postgres') ?? false;

async function call(root: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${root}/${path}`, {
    method,
    headers: { Authorization: `Bearer ${await token()}`, ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

// SQLite is the one-process default (one writer at a time per file); several instances are the PostgreSQL path.
(onPostgres() ? describe : describe.skip)('two service processes on one PostgreSQL database', () => {
  let url: string;
  let a: ServiceProcess;
  let b: ServiceProcess;

  beforeAll(async () => {
    url = await freshDatabaseUrl();
    a = await spawnService({ DATABASE_URL: url });
    b = await spawnService({ DATABASE_URL: url, DB_MIGRATE: 'false' });
  }, 60000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await dropSchema(url);
  });

  it('reads on one instance what the other wrote, and refuses a stale If-Match across instances', async () => {
    // arrange
    const created = await call(a.root, 'POST', UPLOADS, { deviceIdentities: [aDevice({ serialNumber: 'X-1' })] });
    expect(created.status).toBe(201);
    const device = created.body.deviceIdentities[0];
    const path = `${UPLOADS}/${created.body.id}/deviceIdentities/${device.id}`;

    // act: read on B, update on A, then B gets A's old ETag
    const readOnB = await call(b.root, 'GET', path);
    const updatedOnA = await call(a.root, 'PATCH', path, { groupTag: 'from-a' }, { 'If-Match': readOnB.body['@odata.etag'] });
    const staleOnB = await call(b.root, 'PATCH', path, { groupTag: 'from-b' }, { 'If-Match': readOnB.body['@odata.etag'] });

    // assert
    expect(readOnB.status).toBe(200);
    expect(readOnB.body.serialNumber).toBe('X-1');
    expect(updatedOnA.status).toBe(200);
    expect(staleOnB.status).toBe(412);
    expect(staleOnB.body.error.code).toBe('PreconditionFailed');
    expect((await call(b.root, 'GET', path)).body.groupTag).toBe('from-a');
  });

  it('loses no update when both instances hammer the same devices with conditional PATCHes', async () => {
    // arrange: 5 devices whose groupTag is a counter
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await call(a.root, 'POST', LIVE, aDevice({ groupTag: '0', serialNumber: `H-${i}` }))).body.id);
    const successes = new Map(ids.map((id) => [id, 0]));

    // act: 8 workers per instance, each read-increment-write with If-Match, 15 rounds
    const worker = async (root: string, seed: number) => {
      for (let round = 0; round < 15; round++) {
        const id = ids[(seed + round) % ids.length];
        const current = await call(root, 'GET', `${LIVE}/${id}`);
        const next = String(Number(current.body.groupTag) + 1);
        const res = await call(root, 'PATCH', `${LIVE}/${id}`, { groupTag: next }, { 'If-Match': current.body['@odata.etag'] });
        expect([200, 412]).toContain(res.status);
        if (res.status === 200) successes.set(id, successes.get(id)! + 1);
      }
    };
    await Promise.all([...Array(8)].flatMap((_, i) => [worker(a.root, i), worker(b.root, i + 3)]));

    // assert: every counter equals its successful increments, read back through either instance
    for (const id of ids) {
      const viaA = await call(a.root, 'GET', `${LIVE}/${id}`);
      const viaB = await call(b.root, 'GET', `${LIVE}/${id}`);
      expect(Number(viaA.body.groupTag)).toBe(successes.get(id));
      const { '@odata.context': _a, ...bodyA } = viaA.body;
      const { '@odata.context': _b, ...bodyB } = viaB.body;
      expect(bodyB).toEqual(bodyA);
    }
    expect([...successes.values()].reduce((x, y) => x + y)).toBeGreaterThan(0);
  }, 60000);

  it('applies concurrent delta payloads from both instances atomically', async () => {
    const upload = (await call(a.root, 'POST', UPLOADS, {})).body.id;
    const devices = `${UPLOADS}/${upload}/deviceIdentities`;
    const batch = (prefix: string) => ({ '@context': '#$delta', value: Array.from({ length: 20 }, (_, i) => aDevice({ serialNumber: `${prefix}-${i}` })) });
    const results = await Promise.all([...Array(5)].flatMap((_, i) => [call(a.root, 'PATCH', devices, batch(`A${i}`)), call(b.root, 'PATCH', devices, batch(`B${i}`))]));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    const count = await fetch(`${b.root}/${devices}/$count`, { headers: { Authorization: `Bearer ${await token()}` } });
    expect(await count.text()).toBe('200');
    const uploadNow = await call(b.root, 'GET', `${UPLOADS}/${upload}`);
    expect(uploadNow.body.status).toBe('pending');
  }, 60000);
});

describe('graceful shutdown', () => {
  it('on SIGTERM stops accepting, finishes the request in flight, and exits 0', async () => {
    // arrange: a request whose body is still arriving when the signal comes
    const url = onPostgres() ? await freshDatabaseUrl() : `sqlite:${join(mkdtempSync(join(tmpdir(), 'stop-')), 'db.sqlite')}`;
    const service = await spawnService({ DATABASE_URL: url });
    const body = JSON.stringify(aDevice({ serialNumber: 'IN-FLIGHT' }));
    const socket = connect(service.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    let response = '';
    socket.on('data', (chunk) => (response += chunk.toString()));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      `POST /beta/${LIVE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${await token()}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));

    // act
    const exit = service.stop('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const refused = await fetch(`${service.root}/$metadata`).then(
      () => 'accepted',
      () => 'refused',
    );
    socket.write(body.slice(10));
    await closed;

    // assert
    expect(response).toMatch(/^HTTP\/1\.1 201 Created/);
    expect(response).toContain('"serialNumber":"IN-FLIGHT"');
    expect(refused).toBe('refused');
    expect(await exit).toBe(0);
    await dropSchema(url);
  }, 60000);
});
