import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { ConfigError, loadConfig } from '../src/config';
import { Database } from '../src/db/database';
import { createApp } from '../src/server';
import { setupAuth } from '../src/auth';
import { spawnService } from './support/process';
import { LIVE, TEST_SECRET, token } from './support/service';

/** What a newcomer meets first: configuration checked at start, the printed token, logs without secrets. */
describe('configuration', () => {
  it.each([
    [{ PORT: 'eighty' }, 'PORT must be a whole number'],
    [{ PORT: '70000' }, 'PORT must be between 0 and 65535'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL must be sqlite:<path>'],
    [{ BASE_PATH: 'beta' }, 'BASE_PATH must be a URL path'],
    [{ PUBLIC_URL: 'not a url' }, 'PUBLIC_URL must be an absolute URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL must be one of'],
    [{ MAX_PAGE_SIZE: '0' }, 'MAX_PAGE_SIZE must be between 1 and 10000'],
    [{ DB_MIGRATE: 'maybe' }, 'DB_MIGRATE must be true or false'],
    [{ AUTH_SECRET: 'short' }, 'AUTH_SECRET must be at least 16 characters'],
    [{ SQLITE_SYNCHRONOUS: 'off' }, 'SQLITE_SYNCHRONOUS must be full or normal'],
    [{ THROTTLE_WRITES: 'fast' }, 'THROTTLE_WRITES must look like 200/20'],
    [{ THROTTLE_STORE: 'memcached://cache:11211' }, 'THROTTLE_STORE must be memory, postgres or redis://host:port[/db]'],
    [{ KEEP_ALIVE_TIMEOUT_MS: '0' }, 'KEEP_ALIVE_TIMEOUT_MS must be between 1 and 3600000'],
  ])('refuses %j', (env, message) => {
    expect(() => loadConfig(env as NodeJS.ProcessEnv)).toThrow(ConfigError);
    expect(() => loadConfig(env as NodeJS.ProcessEnv)).toThrow(message);
  });

  it('stops the process with exit code 2 and names the variable', async () => {
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', 'src', 'main.ts')], {
        env: { PATH: process.env.PATH, PORT: 'eighty' },
      }, (_err, _stdout, stderr) => resolve({ code: child.exitCode, stderr }));
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Configuration error: PORT must be a whole number');
  }, 30000);
});

describe('npm start with nothing configured', () => {
  it('prints a read-write token for tenant default that lists devices', async () => {
    // arrange: no AUTH_SECRET, so the service makes its own secret next to its database
    const dir = mkdtempSync(join(tmpdir(), 'start-'));
    const service = await spawnService({ DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, AUTH_SECRET: '' });
    try {
      const printed = /export TOKEN=(\S+)/.exec(service.output())?.[1];
      expect(printed).toBeDefined();

      // act
      const res = await fetch(`${service.root}/${LIVE}`, { headers: { Authorization: `Bearer ${printed}` } });
      const created = await fetch(`${service.root}/${LIVE}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${printed}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ serialNumber: 'FIRST' }),
      });

      // assert
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ value: [] });
      expect(created.status).toBe(201);
      expect((await fetch(`${service.root}/${LIVE}`, { headers: { Authorization: `Bearer ${await token()}` } })).status).toBe(401);
    } finally {
      expect(await service.stop()).toBe(0);
    }
  }, 60000);
});

describe('logs', () => {
  it('carry the request id, never the token or the body', async () => {
    // arrange: a service whose JSON log lines are captured
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, next) => (lines.push(chunk.toString()), next()) });
    const config = loadConfig({ NODE_ENV: 'test', PORT: '0', DATABASE_URL: 'sqlite::memory:', AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'info' });
    const db = await Database.open(config.databaseUrl);
    const app = createApp(config, db, pino({ level: 'info' }, sink), (await setupAuth(config)).authenticate);
    await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
    const { port } = app.server.address() as { port: number };
    const bearer = await token();
    try {
      // act: a good request, a failing one, and one with a bad token
      const ok = await fetch(`http://127.0.0.1:${port}/beta/${LIVE}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ serialNumber: 'SECRET-SERIAL' }),
      });
      await fetch(`http://127.0.0.1:${port}/beta/${LIVE}`, { headers: { Authorization: 'Bearer forged.token.value' } });

      // assert
      const log = lines.join('');
      expect(ok.status).toBe(201);
      expect(log).toContain(ok.headers.get('request-id')!);
      expect(log).not.toContain(bearer);
      expect(log).not.toContain('forged.token.value');
      expect(log).not.toContain(TEST_SECRET);
      expect(log).not.toContain('SECRET-SERIAL');
    } finally {
      await app.close();
    }
  });
});
