import Sqlite from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions, MIGRATIONS } from '../src/db/database';
import { UploadStatusTriggersPostgres1764800000000 } from '../src/db/migrations/1764800000000-UploadStatusTriggersPostgres';
import { sqliteInsertTriggerSql } from '../src/db/migrations/1765000000000-CheaperUploadStatusTriggers';
import { uploadCountsFunctionBody, uploadStatusFunctionBody, UploadDeviceCounts1765100000000 } from '../src/db/migrations/1765100000000-UploadDeviceCounts';
import { uploadStatusValues } from '../src/db/upload-status-rule';
import { enumType } from '../src/odata/model';
import { TYPE } from '../src/autopilot/graph-types';
import { dropSchema, freshDatabaseUrl, startService, TestService, UPLOADS } from './support/service';

/**
 * The database owns an upload's status (SPEC §6), on both engines: device rows written with raw SQL on a connection
 * of their own, outside the service, move the upload's status and ETag exactly when the rule says, once per change.
 */
const postgres = process.env.DATABASE_URL?.startsWith('postgres') ?? false;
const onPostgres = postgres ? describe : describe.skip;
const onSqlite = postgres ? describe.skip : describe;

const DEVICE = '"importedWindowsAutopilotDeviceIdentity"';
const UPLOAD = '"importedWindowsAutopilotDeviceIdentityUpload"';
const importStatus = (name: string) => enumType(TYPE.importStatus).members.get(name)!;

/** A connection of its own to the service's database; SQL with `?` placeholders on both engines. */
interface RawSql {
  query(sql: string, params?: unknown[]): Promise<Record<string, any>[]>;
  close(): Promise<void>;
  /** The PostgreSQL connection itself. */
  client?: Client;
}

async function connect(databaseUrl: string): Promise<RawSql> {
  if (databaseUrl.startsWith('sqlite:')) {
    const db = new Sqlite(databaseUrl.slice('sqlite:'.length), { timeout: 5000 });
    return {
      query: async (sql, params = []) => {
        const statement = db.prepare(sql);
        if (statement.reader) return statement.all(...params) as Record<string, any>[];
        statement.run(...params);
        return [];
      },
      close: async () => void db.close(),
    };
  }
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  return {
    client,
    query: async (sql, params = []) => {
      let i = 0;
      return (await client.query(sql.replace(/\?/g, () => `$${++i}`), params)).rows;
    },
    close: () => client.end(),
  };
}

let service: TestService;
let databaseUrl: string;
let raw: RawSql;
let serial = 0;

beforeAll(async () => {
  databaseUrl = postgres ? await freshDatabaseUrl() : `sqlite:${join(mkdtempSync(join(tmpdir(), 'upload-status-')), 'db.sqlite')}`;
  service = await startService({}, databaseUrl);
  raw = await connect(databaseUrl);
});
afterAll(async () => {
  await raw.close();
  await service.close();
  if (!postgres) rmSync(join(databaseUrl.slice('sqlite:'.length), '..'), { recursive: true, force: true });
});

async function newUpload(): Promise<string> {
  const res = await service.request('POST', UPLOADS, { body: {} });
  expect(res.status).toBe(201);
  return res.body.id;
}

/** The upload as a client sees it: status and ETag. */
async function uploadState(id: string): Promise<{ status: string; etag: string }> {
  const res = await service.get(`${UPLOADS}/${id}`);
  expect(res.status).toBe(200);
  expect(res.body['@odata.etag']).toBe(res.headers.get('etag'));
  return { status: res.body.status, etag: res.headers.get('etag')! };
}

const ids = () => `00000000-0000-4000-8000-${String(++serial).padStart(12, '0')}`;

/** Inserts devices with the given import status (model names) into an upload (or the live collection: null), in one statement. */
async function insertDevices(uploadId: string | null, statuses: string[], on: RawSql = raw): Promise<string[]> {
  const made = statuses.map(() => ids());
  const values = statuses.map(() => `(?, 'default', ?, ?, ?, 0, 1)`).join(', ');
  const params = statuses.flatMap((s, i) => [made[i], uploadId, `RAW-${made[i]}`, importStatus(s)]);
  await on.query(
    `INSERT INTO ${DEVICE} ("id", "tenantId", "uploadId", "serialNumber", "stateDeviceImportStatus", "stateDeviceErrorCode", "version") VALUES ${values}`,
    params,
  );
  return made;
}

/** As insertDevices, where a status may be null (no import status). */
async function insertDevicesWithStatus(uploadId: string, statuses: (string | null)[]): Promise<void> {
  const values = statuses.map(() => `(?, 'default', ?, ?, 0, 1)`).join(', ');
  const params = statuses.flatMap((s) => [ids(), uploadId, s === null ? null : importStatus(s)]);
  await raw.query(`INSERT INTO ${DEVICE} ("id", "tenantId", "uploadId", "stateDeviceImportStatus", "stateDeviceErrorCode", "version") VALUES ${values}`, params);
}

/** A DataSource on `url` with the migrations applied: all of them, or those before `upTo`. */
async function migrated(url: string, upTo?: (typeof MIGRATIONS)[number]): Promise<DataSource> {
  const migrations = upTo ? MIGRATIONS.slice(0, MIGRATIONS.indexOf(upTo)) : MIGRATIONS;
  const source = new DataSource({ ...dataSourceOptions(url), migrations });
  await source.initialize();
  await source.runMigrations();
  return source;
}

const setStatus = (id: string, status: string, on: RawSql = raw) =>
  on.query(`UPDATE ${DEVICE} SET "stateDeviceImportStatus" = ?, "version" = "version" + 1 WHERE "id" = ?`, [importStatus(status), id]);

describe('an upload written to by raw SQL outside the service', () => {
  it('follows its devices, with a new ETag exactly when its status changes', async () => {
    // arrange
    const upload = await newUpload();
    const other = await newUpload();
    let a = '';
    let b = '';
    const steps: [string, () => Promise<unknown>, string, boolean][] = [
      ['insert a unknown', async () => ([a] = await insertDevices(upload, ['unknown'])), 'pending', true],
      ['insert b pending', async () => ([b] = await insertDevices(upload, ['pending'])), 'pending', false],
      ['a → complete (b still pending)', () => setStatus(a, 'complete'), 'pending', false],
      ['b → error', () => setStatus(b, 'error'), 'error', true],
      ['a groupTag only', () => raw.query(`UPDATE ${DEVICE} SET "groupTag" = 'lab' WHERE "id" = ?`, [a]), 'error', false],
      ['b → partial', () => setStatus(b, 'partial'), 'pending', true],
      ['b → complete', () => setStatus(b, 'complete'), 'complete', true],
      ['b → complete again', () => setStatus(b, 'complete'), 'complete', false],
      ['a live device (no upload), unknown', () => insertDevices(null, ['unknown']), 'complete', false],
      ['a device of another upload, error', () => insertDevices(other, ['error']), 'complete', false],
      ['delete b', () => raw.query(`DELETE FROM ${DEVICE} WHERE "id" = ?`, [b]), 'complete', false],
      ['delete a', () => raw.query(`DELETE FROM ${DEVICE} WHERE "id" = ?`, [a]), 'noUpload', true],
    ];
    let before = await uploadState(upload);
    expect(before.status).toBe('noUpload');

    for (const [step, act, status, changes] of steps) {
      // act
      await act();
      // assert
      const after = await uploadState(upload);
      expect({ step, status: after.status, etagChanged: after.etag !== before.etag }).toEqual({ step, status, etagChanged: changes });
      before = after;
    }
    expect((await uploadState(other)).status).toBe('error');
    const [{ version }] = await raw.query(`SELECT "version" FROM ${UPLOAD} WHERE "id" = ?`, [upload]);
    expect(Number(version)).toBe(1 + steps.filter(([, , , changes]) => changes).length);
  });

  // Every member of the device enum, by its number in the model: proves the numbers in the triggers are the model's.
  it.each([
    [['unknown'], 'pending'],
    [['pending'], 'pending'],
    [['partial'], 'pending'],
    [['complete'], 'complete'],
    [['error'], 'error'],
    [['complete', 'error'], 'error'],
    [['error', 'unknown'], 'pending'],
    [['error', 'partial', 'complete'], 'pending'],
    [['complete', 'complete'], 'complete'],
  ])('devices %j make the upload %s', async (devices, expected) => {
    const upload = await newUpload();
    for (const status of devices) await insertDevices(upload, [status]);
    expect((await uploadState(upload)).status).toBe(expected);
  });

  it('moves once for a 500-device insert, once for a 500-device update, once for deleting them all', async () => {
    // arrange
    const upload = await newUpload();
    const versions: number[] = [];
    const version = async () => versions.push(Number((await raw.query(`SELECT "version" FROM ${UPLOAD} WHERE "id" = ?`, [upload]))[0].version));
    await version();

    // act
    await insertDevices(upload, Array(500).fill('unknown'));
    await version();
    await raw.query(`UPDATE ${DEVICE} SET "stateDeviceImportStatus" = ? WHERE "uploadId" = ?`, [importStatus('complete'), upload]);
    await version();
    await raw.query(`DELETE FROM ${DEVICE} WHERE "uploadId" = ?`, [upload]);
    await version();

    // assert
    expect(versions).toEqual([1, 2, 3, 4]);
    expect((await uploadState(upload)).status).toBe('noUpload');
  });
});

onSqlite('SQLite status triggers (migration 1764600000000, numbers written by hand)', () => {
  it('use the enum numbers of the CSDL model', async () => {
    const rows = await raw.query(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name`);
    expect(rows).toHaveLength(3);
    const v = uploadStatusValues();
    for (const { name, sql } of rows) {
      if (name === 'TR_device_insert_upload_status') {
        expect(sql).toBe(sqliteInsertTriggerSql()); // migration 1765000000000, built from the model's numbers
        continue;
      }
      const text = String(sql).replace(/\s+/g, ' ');
      const rule =
        /CASE WHEN NOT EXISTS \([^)]*\) THEN (\d+) WHEN EXISTS \([^)]* IN \(([\d, ]+)\)\) THEN (\d+) WHEN EXISTS \([^)]* = (\d+)\) THEN (\d+) ELSE (\d+) END/g;
      const found = [...text.matchAll(rule)];
      expect({ name, cases: found.length }).toEqual({ name, cases: 2 }); // in SET and in WHERE
      for (const m of found) {
        expect({
          noUpload: Number(m[1]),
          unfinished: m[2].split(',').map(Number),
          pending: Number(m[3]),
          failed: Number(m[4]),
          error: Number(m[5]),
          complete: Number(m[6]),
        }).toEqual({ ...v });
      }
    }
  });
});

describe('devices added to an upload', () => {
  it.each([
    [[], ['complete'], 'complete'],
    [[], [null], 'complete'],
    [[], ['error'], 'error'],
    [[], ['complete', 'error'], 'error'],
    [[], ['error', 'partial'], 'pending'],
    [['complete'], ['unknown'], 'pending'],
    [['complete'], ['error'], 'error'],
    [['complete'], ['complete'], 'complete'],
    [['error'], ['complete'], 'error'],
    [['error'], ['pending'], 'pending'],
    [['pending'], ['error'], 'pending'],
    [['pending'], ['complete'], 'pending'],
  ])('to %j, %j added in one statement: %s', async (existing, added, expected) => {
    // arrange
    const upload = await newUpload();
    if (existing.length) await insertDevices(upload, existing as string[]);
    const before = await uploadState(upload);

    // act
    await insertDevicesWithStatus(upload, added);

    // assert: the status, and a new ETag exactly when it changed
    const after = await uploadState(upload);
    expect(after.status).toBe(expected);
    expect(after.etag !== before.etag).toBe(after.status !== before.status);
  });
});

onPostgres('PostgreSQL status triggers', () => {
  it('are statement triggers for INSERT, DELETE and TRUNCATE and a row trigger for UPDATE, holding the rule with the model\'s numbers', async () => {
    const triggers = await raw.query(
      `SELECT tgname, tgtype & 1 = 1 AS "perRow", p.proname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
       WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal ORDER BY tgname`,
    );
    expect(triggers).toEqual([
      { tgname: 'TR_device_delete_upload_status', perRow: false, proname: 'FN_device_upload_status' },
      { tgname: 'TR_device_insert_upload_status', perRow: false, proname: 'FN_device_upload_status' },
      { tgname: 'TR_device_truncate_upload_status', perRow: false, proname: 'FN_device_upload_status' },
      { tgname: 'TR_device_update_upload_status', perRow: true, proname: 'FN_device_upload_counts' },
    ]);
    const source = async (name: string) => (await raw.query(`SELECT prosrc FROM pg_proc WHERE oid = ?::regproc`, [`"${name}"`]))[0].prosrc;
    expect(await source('FN_device_upload_status')).toBe(uploadStatusFunctionBody());
    expect(await source('FN_device_upload_counts')).toBe(uploadCountsFunctionBody());
    const [{ when }] = await raw.query(`SELECT pg_get_triggerdef(t.oid) AS "when" FROM pg_trigger t WHERE t.tgname = 'TR_device_update_upload_status'
      AND t.tgrelid = ?::regclass`, [DEVICE]);
    expect(when).toContain('FOR EACH ROW WHEN');
  });

  it('count once per INSERT or DELETE statement and once per UPDATEd device that crosses a category, keeping the counts exact', async () => {
    // arrange
    const upload = await newUpload();
    const client = raw.client!;
    await client.query('BEGIN');
    await client.query(`SET LOCAL track_functions = 'pl'`);
    const calls = async () => {
      const { rows } = await client.query(
        `SELECT pg_stat_get_xact_function_calls('"FN_device_upload_status"'::regproc) AS statement,
                pg_stat_get_xact_function_calls('"FN_device_upload_counts"'::regproc) AS row`,
      );
      return { statement: Number(rows[0].statement), row: Number(rows[0].row) };
    };
    const counts = async () =>
      (await raw.query(`SELECT "deviceCount", "unfinishedCount", "failedCount" FROM ${UPLOAD} WHERE "id" = ?`, [upload]))[0];
    const steps: [string, () => Promise<unknown>, { statement: number; row: number }, Record<string, number>][] = [
      ['insert 500 unknown', () => insertDevices(upload, Array(500).fill('unknown')), { statement: 1, row: 0 }, { deviceCount: 500, unfinishedCount: 500, failedCount: 0 }],
      ['500 groupTags', () => raw.query(`UPDATE ${DEVICE} SET "groupTag" = 'lab' WHERE "uploadId" = ?`, [upload]), { statement: 1, row: 0 }, { deviceCount: 500, unfinishedCount: 500, failedCount: 0 }],
      ['500 unknown → partial', () => raw.query(`UPDATE ${DEVICE} SET "stateDeviceImportStatus" = ? WHERE "uploadId" = ?`, [importStatus('partial'), upload]), { statement: 1, row: 0 }, { deviceCount: 500, unfinishedCount: 500, failedCount: 0 }],
      ['500 partial → error', () => raw.query(`UPDATE ${DEVICE} SET "stateDeviceImportStatus" = ? WHERE "uploadId" = ?`, [importStatus('error'), upload]), { statement: 1, row: 500 }, { deviceCount: 500, unfinishedCount: 0, failedCount: 500 }],
      ['delete 200', () => raw.query(`DELETE FROM ${DEVICE} WHERE "id" IN (SELECT "id" FROM ${DEVICE} WHERE "uploadId" = ? LIMIT 200)`, [upload]), { statement: 2, row: 500 }, { deviceCount: 300, unfinishedCount: 0, failedCount: 300 }],
    ];

    for (const [step, act, expectedCalls, expectedCounts] of steps) {
      // act
      await act();
      // assert
      expect({ step, calls: await calls(), counts: await counts() }).toEqual({ step, calls: expectedCalls, counts: expectedCounts });
    }
    await client.query('COMMIT');
    expect((await uploadState(upload)).status).toBe('error');
  });

  it('lock the upload only for a change that can move its status', async () => {
    // arrange: another transaction holds the upload's row lock
    const upload = await newUpload();
    const [a, b] = await insertDevices(upload, ['pending', 'complete']);
    const holder = await connect(databaseUrl);
    const writer = await connect(databaseUrl);
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM ${UPLOAD} WHERE "id" = ? FOR UPDATE`, [upload]);
    await writer.query(`SET lock_timeout = '300ms'`);
    const outcome = (step: Promise<unknown>) => step.then(() => 'written', (err: { code?: string }) => `failed ${err.code}`);

    // act: changes within a category (unfinished pending → partial; complete → null; a groupTag) and one across
    const within = [
      await outcome(setStatus(a, 'partial', writer)),
      await outcome(writer.query(`UPDATE ${DEVICE} SET "stateDeviceImportStatus" = NULL WHERE "id" = ?`, [b])),
      await outcome(writer.query(`UPDATE ${DEVICE} SET "groupTag" = 'lab' WHERE "id" = ?`, [a])),
    ];
    const across = await outcome(setStatus(a, 'error', writer));
    await holder.query('ROLLBACK');
    await holder.close();
    await writer.close();

    // assert: 55P03 lock_not_available — only the change across categories waited for the upload
    expect(within).toEqual(['written', 'written', 'written']);
    expect(across).toBe('failed 55P03');
    expect((await uploadState(upload)).status).toBe('pending');
  });

  it('start from the right status when they are installed', async () => {
    // arrange: a database without the triggers, with an upload whose status lags behind its device
    const url = await freshDatabaseUrl();
    const before = await migrated(url, UploadStatusTriggersPostgres1764800000000);
    await before.query(`INSERT INTO ${UPLOAD} ("id", "tenantId", "createdDateTimeUtc", "status", "version") VALUES ('u-1', 'default', 0, 0, 1)`);
    await before.query(
      `INSERT INTO ${DEVICE} ("id", "tenantId", "uploadId", "stateDeviceImportStatus", "version") VALUES ('d-1', 'default', 'u-1', $1, 1)`,
      [importStatus('error')],
    );
    await before.destroy();

    // act
    const after = await migrated(url);
    const [upload] = await after.query(`SELECT "status", "version" FROM ${UPLOAD} WHERE "id" = 'u-1'`);
    await after.destroy();
    await dropSchema(url);

    // assert
    expect(upload).toEqual({ status: uploadStatusValues().error, version: 2 });
  });

  it('count the devices an upload already has when the counts are installed', async () => {
    // arrange: a database before the counts (migration 1765100000000), an upload with an unknown, a failed and a complete device
    const url = await freshDatabaseUrl();
    const before = await migrated(url, UploadDeviceCounts1765100000000);
    await before.query(`INSERT INTO ${UPLOAD} ("id", "tenantId", "createdDateTimeUtc") VALUES ('u-1', 'default', 0)`);
    await before.query(
      `INSERT INTO ${DEVICE} ("id", "tenantId", "uploadId", "stateDeviceImportStatus", "version") VALUES ('d-1', 'default', 'u-1', $1, 1), ('d-2', 'default', 'u-1', $2, 1), ('d-3', 'default', 'u-1', $3, 1)`,
      [importStatus('unknown'), importStatus('error'), importStatus('complete')],
    );
    await before.destroy();

    // act: migrate, then the unknown device completes and the failed one is deleted
    const after = await migrated(url);
    const status = async () => (await after.query(`SELECT "status", "deviceCount", "unfinishedCount", "failedCount" FROM ${UPLOAD} WHERE "id" = 'u-1'`))[0];
    const steps = [await status()];
    await after.query(`UPDATE ${DEVICE} SET "stateDeviceImportStatus" = $1 WHERE "id" = 'd-1'`, [importStatus('complete')]);
    steps.push(await status());
    await after.query(`DELETE FROM ${DEVICE} WHERE "id" = 'd-2'`);
    steps.push(await status());
    await after.destroy();
    await dropSchema(url);

    // assert
    const v = uploadStatusValues();
    expect(steps).toEqual([
      { status: v.pending, deviceCount: 3, unfinishedCount: 1, failedCount: 1 },
      { status: v.error, deviceCount: 3, unfinishedCount: 0, failedCount: 1 },
      { status: v.complete, deviceCount: 2, unfinishedCount: 0, failedCount: 0 },
    ]);
  });

  it('follow a write from a session whose search_path is another schema', async () => {
    const upload = await newUpload();
    const schema = /search_path=([a-z0-9_]+)/.exec(decodeURIComponent(databaseUrl))![1];
    const elsewhere = new Client({ connectionString: process.env.DATABASE_URL });
    await elsewhere.connect();
    try {
      await elsewhere.query(
        `INSERT INTO "${schema}".${DEVICE} ("id", "tenantId", "uploadId", "stateDeviceImportStatus", "version") VALUES ($1, 'default', $2, $3, 1)`,
        [ids(), upload, importStatus('complete')],
      );
    } finally {
      await elsewhere.end();
    }
    expect((await uploadState(upload)).status).toBe('complete');
  });

  it('follow a device moved to another upload, and a TRUNCATE', async () => {
    // arrange
    const from = await newUpload();
    const to = await newUpload();
    const [a] = await insertDevices(from, ['error']);
    await insertDevices(to, ['complete']);

    // act / assert
    await raw.query(`UPDATE ${DEVICE} SET "uploadId" = ? WHERE "id" = ?`, [to, a]);
    expect([(await uploadState(from)).status, (await uploadState(to)).status]).toEqual(['noUpload', 'error']);
    await raw.query(`TRUNCATE ${DEVICE}`);
    expect([(await uploadState(from)).status, (await uploadState(to)).status]).toEqual(['noUpload', 'noUpload']);
  });

  describe('with two connections writing one upload in overlapping transactions (READ COMMITTED)', () => {
    let first: RawSql;
    let second: RawSql;
    let secondPid: number;
    beforeEach(async () => {
      first = await connect(databaseUrl);
      second = await connect(databaseUrl);
      [{ pid: secondPid }] = await second.query('SELECT pg_backend_pid() AS pid');
    });
    afterEach(async () => {
      await first.close();
      await second.close();
    });

    /** Resolves once the second connection is blocked on a lock (the upload row the first one holds). */
    async function secondWaits(): Promise<void> {
      for (let i = 0; i < 500; i++) {
        const [row] = await raw.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = ?`, [secondPid]);
        if (row?.wait_event_type === 'Lock') return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('the second writer never waited for the first');
    }

    it('counts the device the first committed while the second waited (insert, insert)', async () => {
      // arrange
      const upload = await newUpload();

      // act: the first inserts a failed device and holds the upload; the second inserts a complete one meanwhile
      await first.query('BEGIN');
      await insertDevices(upload, ['error'], first);
      await second.query('BEGIN');
      const secondInsert = insertDevices(upload, ['complete'], second);
      await secondWaits();
      await first.query('COMMIT');
      await secondInsert;
      await second.query('COMMIT');

      // assert: the second's statement began before the first committed; a snapshot from then would say complete
      expect((await uploadState(upload)).status).toBe('error');
      const [{ version }] = await raw.query(`SELECT "version" FROM ${UPLOAD} WHERE "id" = ?`, [upload]);
      expect(Number(version)).toBe(2); // noUpload → error, once
    });

    it('is not stale after two devices complete in overlapping transactions (update, update)', async () => {
      // arrange: two unfinished devices
      const upload = await newUpload();
      const [a, b] = await insertDevices(upload, ['unknown', 'pending']);

      // act: each completes one device; without the lock each would still see the other's device unfinished
      await first.query('BEGIN');
      await second.query('BEGIN');
      await setStatus(a, 'complete', first);
      const secondUpdate = setStatus(b, 'complete', second);
      await secondWaits();
      await first.query('COMMIT');
      await secondUpdate;
      await second.query('COMMIT');

      // assert
      expect((await uploadState(upload)).status).toBe('complete');
    });

    it('ends right after many racing transactions of both connections', async () => {
      // arrange
      const upload = await newUpload();
      const statuses = ['unknown', 'pending', 'partial', 'complete', 'error'];
      let seed = 7;
      const pick = <T>(items: T[]) => items[(seed = (seed * 1103515245 + 12345) % 2147483648) % items.length];
      const expected = async () => {
        const rows = await raw.query(`SELECT "stateDeviceImportStatus" AS s FROM ${DEVICE} WHERE "uploadId" = ?`, [upload]);
        const has = (...names: string[]) => rows.some((r) => names.map(importStatus).includes(Number(r.s)));
        if (rows.length === 0) return 'noUpload';
        return has('unknown', 'pending', 'partial') ? 'pending' : has('error') ? 'error' : 'complete';
      };

      // act: each connection writes only its own devices (so they never wait for each other's device rows)
      const mine: string[][] = [[], []];
      for (let round = 0; round < 15; round++) {
        await Promise.all(
          [first, second].map(async (w, n) => {
            await w.query('BEGIN');
            const action = mine[n].length === 0 ? 'insert' : pick(['insert', 'update', 'update', 'delete']);
            if (action === 'insert') mine[n].push(...(await insertDevices(upload, [pick(statuses)], w)));
            else if (action === 'update') await setStatus(pick(mine[n]), pick(statuses), w);
            else await w.query(`DELETE FROM ${DEVICE} WHERE "id" = ?`, [mine[n].pop()]);
            if (pick([true, false])) await setStatus(pick(mine[n].length ? mine[n] : [ids()]), pick(statuses), w);
            await w.query('COMMIT');
          }),
        );
        // assert, at every quiet point
        expect({ round, status: (await uploadState(upload)).status }).toEqual({ round, status: await expected() });
      }
    });
  });
});
