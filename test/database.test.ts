import 'reflect-metadata';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PoolClient } from 'pg';
import { Database } from '../src/db/database';
import { dropSchema, freshDatabaseUrl } from './support/service';

/** The persistence settings a deployment tunes, as the engine reports them. */
const onPostgres = () => process.env.DATABASE_URL?.startsWith('postgres') ?? false;
const TABLE = 'importedWindowsAutopilotDeviceIdentity';

async function seed(db: Database, n: number) {
  await db.write(async (m) => {
    for (let i = 0; i < n; i++) {
      await m.query(
        `INSERT INTO "${TABLE}" ("id", "tenantId", "stateDeviceImportStatus", "stateDeviceErrorCode", "version") VALUES (${db.dialect.name === 'postgres' ? '$1' : '?'}, 't', 1, 0, 1)`,
        [`00000000-0000-0000-0000-${String(i).padStart(12, '0')}`],
      );
    }
  });
}

describe('database settings', () => {
  (onPostgres() ? it : it.skip)('applies DB_POOL_SIZE and DB_STATEMENT_TIMEOUT_MS on PostgreSQL', async () => {
    const url = await freshDatabaseUrl();
    const db = await Database.open(url, { poolSize: 3, statementTimeoutMs: 1234 });
    try {
      const [{ statement_timeout }] = await db.dataSource.query('SHOW statement_timeout');
      expect(statement_timeout).toBe('1234ms');
      expect((db.dataSource.driver as unknown as { master: { options: { max: number } } }).master.options.max).toBe(3);
      // a statement over the limit fails instead of holding a connection
      await expect(db.dataSource.query('SELECT pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
    } finally {
      await db.close();
      await dropSchema(url);
    }
  });

  (onPostgres() ? it : it.skip)('survives a PostgreSQL connection error that nobody else listens to (a pooled client just handed out)', async () => {
    const url = await freshDatabaseUrl();
    const db = await Database.open(url, { migrate: false });
    try {
      // arrange: a client as pg-pool hands it out — the pool no longer listens to it, its user does not yet
      const pool = (db.dataSource.driver as unknown as { master: { connect(): Promise<PoolClient> } }).master;
      const client = await pool.connect();

      // act: the error node-postgres emits when the server ends the connection; unheard, it is an uncaught exception
      let thrown: unknown;
      try {
        client.emit('error', new Error('Connection terminated unexpectedly'));
      } catch (err) {
        thrown = err;
      }
      client.release(new Error('discarded'));

      // assert
      expect(thrown).toBeUndefined();
      expect(await db.read((m) => m.query('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
      await dropSchema(url);
    }
  });

  (onPostgres() ? it.skip : it)('runs a SQLite file in WAL mode with a busy timeout, synchronous=FULL by default', async () => {
    const db = await Database.open(`sqlite:${join(mkdtempSync(join(tmpdir(), 'wal-')), 'db.sqlite')}`);
    try {
      expect(await db.dataSource.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
      expect(await db.dataSource.query('PRAGMA busy_timeout')).toEqual([{ timeout: 5000 }]);
      // 2 = FULL: the WAL is synced at every commit, so an acknowledged write survives an OS crash or power loss too
      expect(await db.dataSource.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
    } finally {
      await db.close();
    }
  });

  (onPostgres() ? it.skip : it)('takes SQLITE_SYNCHRONOUS=normal (synced at checkpoints only)', async () => {
    const db = await Database.open(`sqlite:${join(mkdtempSync(join(tmpdir(), 'wal-')), 'db.sqlite')}`, { sqliteSynchronous: 'normal' });
    try {
      expect(await db.dataSource.query('PRAGMA synchronous')).toEqual([{ synchronous: 1 }]);
    } finally {
      await db.close();
    }
  });

  (onPostgres() ? it.skip : it)('keeps the sqlite3 driver free of its long-stack-trace shim (TypeORM calls verbose())', async () => {
    const db = await Database.open('sqlite::memory:');
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Database: Sqlite } = require('sqlite3');
      for (const method of ['run', 'all', 'prepare', 'exec']) expect(Sqlite.prototype[method].toString()).not.toContain('new Error()');
    } finally {
      await db.close();
    }
  });

  it('lets concurrent claimers take disjoint rows', async () => {
    const url = await freshDatabaseUrl();
    const db = await Database.open(url);
    try {
      await seed(db, 10);
      const claims = await Promise.all(
        [0, 1].map(() =>
          db.write(async (m) => {
            const ids = (await db.claimRows(m, TABLE, ['id'], `"stateDeviceImportStatus" = 1`, [], ['id'], 4)).map((r) => String(r.id));
            await new Promise((resolve) => setTimeout(resolve, 100)); // hold the rows while the other claims
            // a worker marks what it took, in the same transaction
            const list = ids.map((id) => `'${id}'`).join(', ');
            await m.query(`UPDATE "${TABLE}" SET "stateDeviceImportStatus" = 2 WHERE "id" IN (${list})`);
            return ids;
          }),
        ),
      );
      expect(claims[0]).toHaveLength(4);
      expect(claims[1]).toHaveLength(4);
      expect(new Set([...claims[0], ...claims[1]]).size).toBe(8);
    } finally {
      await db.close();
      await dropSchema(url);
    }
  });
});

describe('Database.run on PostgreSQL', () => {
  (onPostgres() ? it : it.skip)('prepares a statement once per connection, up to 256 texts of at most 64 parameters', async () => {
    const url = await freshDatabaseUrl();
    const db = await Database.open(url, { poolSize: 1 });
    try {
      // act: 300 texts of one parameter, then one of 100 parameters, all on the single pooled connection
      const run = (sql: string, params: unknown[]) => db.read((m) => db.run(m, sql, params));
      for (let i = 0; i < 300; i++) expect((await run(`SELECT $1::int + ${i} AS n`, [1])).rows).toEqual([{ n: 1 + i }]);
      const wide = Array.from({ length: 100 }, (_, i) => `$${i + 1}::int`).join(' + ');
      expect((await run(`SELECT ${wide} AS n`, Array(100).fill(1))).rows).toEqual([{ n: 100 }]);
      const again = await run(`SELECT $1::int + 7 AS n`, [2]);
      const named = await run(`SELECT count(*)::int AS n, count(*) FILTER (WHERE statement LIKE '%+ 7 AS n')::int AS seven FROM pg_prepared_statements`, []);

      // assert: the first 256 texts are named (this one included), the rest and the wide one run unnamed, every one answers
      expect(again.rows).toEqual([{ n: 9 }]);
      expect(named.rows).toEqual([{ n: 256, seven: 1 }]);
    } finally {
      await db.close();
      await dropSchema(url);
    }
  });
});

describe('atomic: one ambient transaction for everything inside it', () => {
  let url: string;
  let db: Database;
  const count = () => db.read(async (m) => Number((await m.query(`SELECT COUNT(*) AS n FROM "${TABLE}"`))[0].n));
  const insert = (id: string) =>
    db.write((m) =>
      m.query(
        `INSERT INTO "${TABLE}" ("id", "tenantId", "stateDeviceImportStatus", "stateDeviceErrorCode", "version") VALUES (${db.dialect.name === 'postgres' ? '$1' : '?'}, 'atomic', 1, 0, 1)`,
        [id],
      ),
    );
  const ID = (n: number) => `10000000-0000-0000-0000-${String(n).padStart(12, '0')}`;

  beforeEach(async () => {
    url = await freshDatabaseUrl();
    db = await Database.open(url);
  });
  afterEach(async () => {
    await db.close();
    await dropSchema(url);
  });

  it('rolls back every write made inside it (write, writeOne, a nested atomic) when it fails', async () => {
    const failure = db.atomic(async () => {
      await insert(ID(1));
      await db.writeOne((m) => m.query(`UPDATE "${TABLE}" SET "version" = 2`));
      await db.atomic(() => insert(ID(2)));
      throw new Error('the group failed');
    });

    await expect(failure).rejects.toThrow('the group failed');
    expect(await count()).toBe(0);
  });

  it('commits them together, and reads inside see its own writes without waiting on its lock', async () => {
    const seen = await db.atomic(async () => {
      await insert(ID(1));
      await insert(ID(2));
      return count(); // on SQLite a read outside the block would wait for the block's write lock: a deadlock
    });

    expect(seen).toBe(2);
    expect(await count()).toBe(2);
  });

  it('keeps its writes from other readers until it commits', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const insertedYet = new Promise<void>((resolve) => (inserted = resolve));
    let committed = false;
    const block = db
      .atomic(async () => {
        await insert(ID(1));
        inserted();
        await gate;
      })
      .then(() => (committed = true));

    await insertedYet;
    const outside = count().then((n) => ({ n, afterCommit: committed }));
    if (db.dialect.singleConnection) {
      // SQLite: the outside read waits for the block's write lock, so it sees the commit.
      setTimeout(release, 50);
      await block;
      expect(await outside).toEqual({ n: 1, afterCommit: true });
    } else {
      // PostgreSQL: it answers while the block is still open, with the last committed state.
      expect(await outside).toEqual({ n: 0, afterCommit: false });
      release();
      await block;
    }
  });

  it('runs afterCommit hooks after the commit, and never for a block that rolled back', async () => {
    const calls: string[] = [];
    db.afterCommit(() => calls.push('outside: at once'));
    await db.atomic(async () => {
      await insert(ID(1));
      db.afterCommit(() => calls.push('committed'));
      calls.push('still inside');
    });
    await db
      .atomic(async () => {
        db.afterCommit(() => calls.push('rolled back'));
        throw new Error('no');
      })
      .catch(() => undefined);

    expect(calls).toEqual(['outside: at once', 'still inside', 'committed']);
  });
});
