import { mkdtempSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aDevice } from './fixtures/devices';
import { spawnService } from './support/process';
import { dropSchema, freshDatabaseUrl, LIVE, token } from './support/service';

/** What an orchestrator sees on SIGTERM: the requests in flight are answered, then the process is gone. */
const onPostgres = () => process.env.DATABASE_URL?.startsWith('postgres') ?? false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The exit code, or a note that the process is still running after `ms`. */
function exitWithin<T>(exit: Promise<T>, ms: number): Promise<T | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`still running ${ms / 1000} s after SIGTERM`), ms)));
  return Promise.race([exit, late]).finally(() => clearTimeout(timer));
}

/** A raw HTTP/1.1 connection: what the server sent on it, and whether the server has closed it. */
async function rawConnection(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const connection = { socket, received: '', closed: false };
  socket.on('data', (chunk) => (connection.received += chunk.toString()));
  socket.on('close', () => (connection.closed = true));
  socket.on('error', () => undefined);
  return connection;
}

describe('SIGTERM', () => {
  it('the moment the banner is printed still shuts down gracefully (exit 0, not killed by the signal)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sigterm-'));
    const exits: (number | null)[] = [];
    for (let i = 0; i < 6; i++) {
      const service = await spawnService({ DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}` });
      exits.push(await service.stop());
    }
    expect(exits).toEqual([0, 0, 0, 0, 0, 0]);
  }, 120000);

  it('exits 0 as soon as the last request in flight is answered, whatever idle keep-alive connections are open', async () => {
    // arrange: idle connections are kept, and shutdown waits for them, 10 minutes: far longer than this test may take
    const url = onPostgres() ? await freshDatabaseUrl() : `sqlite:${join(mkdtempSync(join(tmpdir(), 'sigterm-')), 'db.sqlite')}`;
    const service = await spawnService({ DATABASE_URL: url, KEEP_ALIVE_TIMEOUT_MS: '600000', SHUTDOWN_TIMEOUT_MS: '600000' });
    const sockets: Socket[] = [];
    try {
      const idle = await rawConnection(service.port);
      sockets.push(idle.socket);
      idle.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      while (!idle.received.includes('{"status":"ok"}')) await sleep(20);
      const busy = await rawConnection(service.port);
      sockets.push(busy.socket);
      const body = JSON.stringify(aDevice({ serialNumber: 'LAST-ONE' }));
      busy.socket.write(
        `POST /beta/${LIVE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${await token()}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`,
      );
      await sleep(200);

      // act: the signal arrives while the POST's body is still coming; then the body is completed
      const exit = service.stop('SIGTERM');
      await sleep(300);
      busy.socket.write(body.slice(10));
      const outcome = await exitWithin(exit, 30000);

      // assert
      expect(outcome).toBe(0);
      expect(busy.received).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
      expect(busy.received).toMatch(/\r\nConnection: close\r\n/i);
      expect(busy.received).toContain('"serialNumber":"LAST-ONE"');
      expect(idle.received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(idle.received).toMatch(/\r\nConnection: keep-alive\r\n/i);
      await sleep(50);
      expect([idle.closed, busy.closed]).toEqual([true, true]);
    } finally {
      for (const socket of sockets) socket.destroy();
      if (service.child.exitCode === null) service.child.kill('SIGKILL');
      await dropSchema(url);
    }
  }, 60000);
});
