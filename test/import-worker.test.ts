import pino from 'pino';
import { WindowsAutopilotDeviceIdentity } from '../entities/WindowsAutopilotDeviceIdentity';
import { Database } from '../src/db/database';
import { ImportWorkerOptions, startImportWorker } from '../src/autopilot/import-worker';
import { REGISTERED_DEVICE } from '../src/autopilot/registered-device';
import { Binding } from '../src/odata/binding';
import { entityType } from '../src/odata/model';
import { entityToJson } from '../src/odata/serialize';
import { aDevice, HASH_64 } from './fixtures/devices';
import { GUID, LIVE, startService, TestService, token, UPLOADS } from './support/service';

/**
 * The import worker (SPEC §4, §6; issue 11) beside a real service: devices are created over HTTP as clients create them,
 * the worker runs against the service's database, and the outcome is read over HTTP (imported devices) and with SQL
 * (registered devices, until their HTTP controller exists). Each test uses serial numbers of its own.
 */
const onPostgres = () => process.env.DATABASE_URL?.startsWith('postgres') ?? false;
const silent = pino({ level: 'silent' });
const NOW: ImportWorkerOptions = { delayMs: 0, batchSize: 500, pollMs: 25 };
const IMPORTED = 'importedWindowsAutopilotDeviceIdentity';
const REGISTERED = 'windowsAutopilotDeviceIdentity';

let service: TestService;
let db: Database;
beforeAll(async () => {
  service = await startService();
  db = service.app.db;
});
afterAll(() => service.close());

/** Positional placeholders of the engine under test. */
const p = (i: number) => (onPostgres() ? `$${i}` : '?');

async function post(device: Record<string, unknown>, tenant = 'default'): Promise<any> {
  const res = await service.request('POST', LIVE, { body: device, headers: { Authorization: `Bearer ${await token(tenant)}` } });
  expect(res.status).toBe(201);
  return res.body;
}

async function importMany(devices: Record<string, unknown>[], tenant = 'default'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < devices.length; i += 1000) {
    const res = await service.request('POST', `${LIVE}/import`, {
      body: { importedWindowsAutopilotDeviceIdentities: devices.slice(i, i + 1000) },
      headers: { Authorization: `Bearer ${await token(tenant)}` },
    });
    expect(res.status).toBe(200);
    ids.push(...res.body.value.map((d: { id: string }) => d.id));
  }
  return ids;
}

/** Polls a device until its import is complete (a device never processed fails its test by the test timeout). */
async function untilComplete(id: string): Promise<void> {
  while ((await get(id)).state.deviceImportStatus !== 'complete') await new Promise((resolve) => setTimeout(resolve, 20));
}

async function get(id: string, tenant = 'default'): Promise<any> {
  const res = await service.get(`${LIVE}/${id}`, { headers: { Authorization: `Bearer ${await token(tenant)}` } });
  expect(res.status).toBe(200);
  return res.body;
}

/** Starts a worker, lets it process everything due, stops it. */
async function runWorker(options: Partial<ImportWorkerOptions> = {}, database: Database = db): Promise<number> {
  const worker = startImportWorker(database, silent, { ...NOW, ...options });
  try {
    await worker.drain();
  } finally {
    await worker.stop();
  }
  return worker.processed;
}

/** A registered device as its controller will serve it: read with SQL, mapped through the CSDL binding. */
async function registered(id: string): Promise<Record<string, unknown> | undefined> {
  const type = entityType(REGISTERED_DEVICE);
  const binding = new Binding(type, db.dataSource, WindowsAutopilotDeviceIdentity);
  const [row] = await db.dataSource.query(`SELECT * FROM "${REGISTERED}" WHERE "id" = ${p(1)}`, [id]);
  return row && { tenantId: row.tenantId, ...entityToJson(type, binding.fromRow(row), undefined) };
}

async function registeredWithSerial(serial: string): Promise<{ id: string; tenantId: string }[]> {
  return db.dataSource.query(`SELECT "id", "tenantId" FROM "${REGISTERED}" WHERE "serialNumber" = ${p(1)} ORDER BY "id"`, [serial]);
}

const deleteRegistered = (id: string) => db.dataSource.query(`DELETE FROM "${REGISTERED}" WHERE "id" = ${p(1)}`, [id]);

async function countWhere(table: string, where: string, params: unknown[]): Promise<number> {
  const [{ n }] = await db.dataSource.query(`SELECT COUNT(*) AS n FROM "${table}" WHERE ${where}`, params);
  return Number(n);
}

const error = (code: number, name: string) => ({ deviceImportStatus: 'error', deviceRegistrationId: null, deviceErrorCode: code, deviceErrorName: name });

describe('a processed import', () => {
  it('completes with the id of a registered device that carries the import and Graph defaults', async () => {
    // arrange
    const created = await post(aDevice({ serialNumber: 'DONE-1', orderIdentifier: 'PO-7', groupTag: 'kiosk', productKey: 'PK-7', assignedUserPrincipalName: 'ann@contoso.com' }));

    // act
    await runWorker();

    // assert: the imported device
    const device = await get(created.id);
    expect(device.state).toEqual({
      '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentityState',
      deviceImportStatus: 'complete',
      deviceRegistrationId: expect.stringMatching(GUID),
      deviceErrorCode: 0,
      deviceErrorName: null,
    });
    expect(device['@odata.etag']).not.toBe(created['@odata.etag']); // its state changed, so did its ETag
    // … and the device it names
    const registration = await registered(device.state.deviceRegistrationId);
    expect(registration).toEqual({
      tenantId: 'default',
      '@odata.type': '#microsoft.graph.windowsAutopilotDeviceIdentity',
      id: device.state.deviceRegistrationId,
      addressableUserName: 'ann@contoso.com',
      azureActiveDirectoryDeviceId: expect.stringMatching(GUID),
      azureAdDeviceId: registration!.azureActiveDirectoryDeviceId,
      deploymentProfileAssignedDateTime: '0001-01-01T00:00:00Z',
      deploymentProfileAssignmentDetailedStatus: 'none',
      deploymentProfileAssignmentStatus: 'notAssigned',
      deviceAccountPassword: '',
      deviceAccountUpn: '',
      deviceFriendlyName: '',
      displayName: '',
      enrollmentState: 'notContacted',
      groupTag: 'kiosk',
      lastContactedDateTime: '0001-01-01T00:00:00Z',
      managedDeviceId: '00000000-0000-0000-0000-000000000000',
      manufacturer: '',
      model: '',
      productKey: 'PK-7',
      purchaseOrderIdentifier: 'PO-7',
      remediationState: 'unknown',
      remediationStateLastModifiedDateTime: '0001-01-01T00:00:00Z',
      resourceName: '',
      serialNumber: 'DONE-1',
      skuNumber: '',
      systemFamily: '',
      userlessEnrollmentStatus: 'unknown',
      userPrincipalName: 'ann@contoso.com',
    });
    expect(registration!.id).not.toBe(registration!.azureAdDeviceId);
  });

  it('registers absent text as Graph does, as empty strings', async () => {
    const created = await post(aDevice({ serialNumber: 'DONE-2', groupTag: null, productKey: null, assignedUserPrincipalName: null }));

    await runWorker();

    const registration = await registered((await get(created.id)).state.deviceRegistrationId);
    expect(registration).toMatchObject({ serialNumber: 'DONE-2', groupTag: '', productKey: '', purchaseOrderIdentifier: '', userPrincipalName: '', addressableUserName: '' });
  });

  it('processes `unknown` and `pending` devices (rows from before `unknown` was the initial state), and no others', async () => {
    // arrange: whatever state creation gives, PATCH (SPEC §6) sets each one explicitly
    const set = async (serial: string, deviceImportStatus: string | null) => {
      const created = await post(aDevice({ serialNumber: serial }));
      const state = deviceImportStatus === null ? null : { deviceImportStatus };
      const res = await service.request('PATCH', `${LIVE}/${created.id}`, { body: { state } });
      expect(res.status).toBe(200);
      return res.body;
    };
    const unknown = await set('STATE-U', 'unknown');
    const pending = await set('STATE-P', 'pending');
    const failed = await set('STATE-E', 'error');
    const partial = await set('STATE-PA', 'partial');
    const stateless = await set('STATE-N', null);

    // act
    await runWorker();

    // assert
    expect((await get(unknown.id)).state.deviceImportStatus).toBe('complete');
    expect((await get(pending.id)).state.deviceImportStatus).toBe('complete');
    for (const untouched of [failed, partial, stateless]) {
      expect(await get(untouched.id)).toEqual({ ...untouched, '@odata.context': expect.any(String) });
    }
    expect(await countWhere(REGISTERED, `"serialNumber" IN (${p(1)}, ${p(2)}, ${p(3)})`, ['STATE-E', 'STATE-PA', 'STATE-N'])).toBe(0);
  });
});

describe('806 ZtdDeviceAlreadyAssigned', () => {
  it('refuses a serial already registered in the tenant, and completes it again once that registration is deleted', async () => {
    // arrange: SN registered
    const first = await post(aDevice({ serialNumber: 'DUP-1' }));
    await runWorker();
    const registrationId = (await get(first.id)).state.deviceRegistrationId;

    // act: imported again
    const second = await post(aDevice({ serialNumber: 'DUP-1' }));
    await runWorker();

    // assert
    expect((await get(second.id)).state).toMatchObject(error(806, 'ZtdDeviceAlreadyAssigned'));
    expect(await registeredWithSerial('DUP-1')).toEqual([{ id: registrationId, tenantId: 'default' }]);

    // act: the registration deleted (SPEC §6: frees the serial), then imported once more
    await deleteRegistered(registrationId);
    const third = await post(aDevice({ serialNumber: 'DUP-1' }));
    await runWorker();

    // assert: complete, and the earlier refusal stays as it was
    const state = (await get(third.id)).state;
    expect(state).toMatchObject({ deviceImportStatus: 'complete', deviceErrorCode: 0, deviceErrorName: null });
    expect(await registeredWithSerial('DUP-1')).toEqual([{ id: state.deviceRegistrationId, tenantId: 'default' }]);
    expect((await get(second.id)).state.deviceErrorCode).toBe(806);
  });

  it('spans an upload’s deviceIdentities and the live collection: one registry per tenant', async () => {
    const upload = await service.request('POST', UPLOADS, { body: { deviceIdentities: [aDevice({ serialNumber: 'SPAN-1' })] } });
    expect(upload.status).toBe(201);
    await runWorker();
    const live = await post(aDevice({ serialNumber: 'SPAN-1' }));

    await runWorker();

    const contained = await service.get(`${UPLOADS}/${upload.body.id}/deviceIdentities/${upload.body.deviceIdentities[0].id}`);
    expect(contained.body.state.deviceImportStatus).toBe('complete');
    expect((await get(live.id)).state).toMatchObject(error(806, 'ZtdDeviceAlreadyAssigned'));
  });

  it('lets the first of two devices with one serial in a batch register, and refuses the second', async () => {
    // arrange: one import, one batch
    const ids = await importMany([aDevice({ serialNumber: 'TWIN-1', groupTag: 'a' }), aDevice({ serialNumber: 'TWIN-1', groupTag: 'b' })]);

    // act
    await runWorker();

    // assert
    const states = await Promise.all(ids.map(async (id) => (await get(id)).state));
    const complete = states.filter((s) => s.deviceImportStatus === 'complete');
    expect(complete).toHaveLength(1);
    expect(states.filter((s) => s.deviceImportStatus === 'error')).toEqual([expect.objectContaining(error(806, 'ZtdDeviceAlreadyAssigned'))]);
    expect(await registeredWithSerial('TWIN-1')).toEqual([{ id: complete[0].deviceRegistrationId, tenantId: 'default' }]);
  });
});

describe('808 ZtdDeviceAssignedToOtherTenant', () => {
  it('refuses a serial registered in another tenant, in either direction, and leaves the other tenant alone', async () => {
    const mine = await post(aDevice({ serialNumber: 'TENANT-1' }), 'contoso');
    await runWorker();
    const theirs = await post(aDevice({ serialNumber: 'TENANT-1' }), 'fabrikam');

    await runWorker();

    expect((await get(theirs.id, 'fabrikam')).state).toMatchObject(error(808, 'ZtdDeviceAssignedToOtherTenant'));
    const owner = (await get(mine.id, 'contoso')).state;
    expect(owner.deviceImportStatus).toBe('complete');
    expect(await registeredWithSerial('TENANT-1')).toEqual([{ id: owner.deviceRegistrationId, tenantId: 'contoso' }]);
  });

  it('gives one tenant the serial when two import it in one batch, and the other 808', async () => {
    const a = await post(aDevice({ serialNumber: 'TENANT-2' }), 'contoso');
    const b = await post(aDevice({ serialNumber: 'TENANT-2' }), 'fabrikam');

    await runWorker();

    const states = [(await get(a.id, 'contoso')).state, (await get(b.id, 'fabrikam')).state];
    const winner = states.findIndex((s) => s.deviceImportStatus === 'complete');
    expect(winner).toBeGreaterThanOrEqual(0);
    expect(states[1 - winner]).toMatchObject(error(808, 'ZtdDeviceAssignedToOtherTenant'));
    expect(await registeredWithSerial('TENANT-2')).toEqual([{ id: states[winner].deviceRegistrationId, tenantId: ['contoso', 'fabrikam'][winner] }]);
  });
});

describe('802 InvalidZtdHardwareHash', () => {
  it.each([
    ['missing', 'HASH-MISSING', undefined],
    ['null', 'HASH-NULL', null],
    ['empty', 'HASH-EMPTY', ''],
    ['63 bytes', 'HASH-63', Buffer.alloc(63, 7).toString('base64')],
  ])('refuses a hash that is %s, registering nothing', async (_case, serial, hardwareIdentifier) => {
    const body = aDevice({ serialNumber: serial, hardwareIdentifier });
    if (hardwareIdentifier === undefined) delete body.hardwareIdentifier;
    const created = await post(body);

    await runWorker();

    expect((await get(created.id)).state).toMatchObject(error(802, 'InvalidZtdHardwareHash'));
    expect(await registeredWithSerial(serial)).toEqual([]);
  });

  it('takes a hash of exactly 64 bytes', async () => {
    const created = await post(aDevice({ serialNumber: 'HASH-64', hardwareIdentifier: HASH_64 }));

    await runWorker();

    expect((await get(created.id)).state.deviceImportStatus).toBe('complete');
  });

  it('checks the hash before the registry: a bad hash for a registered serial is 802, not 806', async () => {
    await post(aDevice({ serialNumber: 'HASH-FIRST' }));
    await runWorker();
    const created = await post(aDevice({ serialNumber: 'HASH-FIRST', hardwareIdentifier: '' }));

    await runWorker();

    expect((await get(created.id)).state.deviceErrorCode).toBe(802);
  });
});

describe('timing and lifecycle', () => {
  it('leaves a device younger than the delay alone, and takes it once a worker finds it due', async () => {
    // arrange
    const created = await post(aDevice({ serialNumber: 'YOUNG-1' }));

    // act: a worker that waits a minute after a device was stored
    const waiting = await runWorker({ delayMs: 60_000 });

    // assert: untouched, nothing registered
    expect(waiting).toBe(0);
    expect(await get(created.id)).toEqual({ ...created, '@odata.context': expect.any(String) });
    expect(await registeredWithSerial('YOUNG-1')).toEqual([]);

    // and a worker without the delay takes it
    expect(await runWorker({ delayMs: 0 })).toBeGreaterThanOrEqual(1);
    expect((await get(created.id)).state.deviceImportStatus).toBe('complete');
  });

  it('records when a device was stored by the database clock (the column default)', async () => {
    const before = Date.now();
    const created = await post(aDevice({ serialNumber: 'CLOCK-1' }));
    const after = Date.now();

    const [row] = await db.dataSource.query(`SELECT "storedAt" FROM "${IMPORTED}" WHERE "id" = ${p(1)}`, [created.id]);

    // same machine, so the database clock agrees with ours to well within a second
    expect(Number(row.storedAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Number(row.storedAt)).toBeLessThanOrEqual(after + 1000);
    await runWorker();
  });

  it('picks up work stored while no worker ran, once, after a restart', async () => {
    // arrange: a worker that ran and stopped, then devices stored
    const before = startImportWorker(db, silent, NOW);
    await before.drain();
    await before.stop();
    await importMany(Array.from({ length: 30 }, (_, i) => aDevice({ serialNumber: `RESTART-${i}` })));

    // act: the next worker
    const after = await runWorker();

    // assert: all processed by it, each once (one state change: version 1 → 2)
    expect(before.processed).toBe(0);
    expect(after).toBe(30);
    const versions = await db.dataSource.query(
      `SELECT "version", "stateDeviceImportStatus" AS "status" FROM "${IMPORTED}" WHERE "serialNumber" LIKE ${p(1)}`,
      ['RESTART-%'],
    );
    expect(versions).toHaveLength(30);
    expect(new Set(versions.map((v: { version: unknown }) => Number(v.version)))).toEqual(new Set([2]));
    expect(await countWhere(REGISTERED, `"serialNumber" LIKE ${p(1)}`, ['RESTART-%'])).toBe(30);
  });

  it('lets the batch in flight commit on stop() and leaves the rest, untouched, to the next worker', async () => {
    // arrange
    await importMany(Array.from({ length: 1000 }, (_, i) => aDevice({ serialNumber: `STOP-${i}` })));
    const worker = startImportWorker(db, silent, { ...NOW, batchSize: 50 });

    // act: stop while its first batch is in flight
    await worker.stop();

    // assert: every device either fully processed (state and registration) or untouched
    const rows: { status: number; version: number; registration: string | null }[] = (
      await db.dataSource.query(
        `SELECT d."stateDeviceImportStatus" AS "status", d."version" AS "version", r."id" AS "registration"
         FROM "${IMPORTED}" d LEFT JOIN "${REGISTERED}" r ON r."id" = d."stateDeviceRegistrationId" WHERE d."serialNumber" LIKE ${p(1)}`,
        ['STOP-%'],
      )
    ).map((r: Record<string, unknown>) => ({ status: Number(r.status), version: Number(r.version), registration: r.registration as string | null }));
    const done = rows.filter((r) => r.version === 2);
    expect(worker.processed).toBe(50); // the batch in flight, and no other
    expect(done.length).toBe(50);
    expect(done.every((r) => r.registration !== null)).toBe(true);
    expect(rows.filter((r) => r.version === 1).every((r) => r.registration === null)).toBe(true);
    expect(done.length + rows.filter((r) => r.version === 1).length).toBe(1000);

    // and the next worker finishes the rest, each device once
    expect(await runWorker()).toBe(1000 - done.length);
    expect(await countWhere(REGISTERED, `"serialNumber" LIKE ${p(1)}`, ['STOP-%'])).toBe(1000);
    expect(await countWhere(IMPORTED, `"serialNumber" LIKE ${p(1)} AND "version" = 2`, ['STOP-%'])).toBe(1000);
  });

  it('keeps running: kick() wakes it for new devices long before its next poll', async () => {
    // arrange: a worker that has found nothing and sleeps for a minute
    const worker = startImportWorker(db, silent, { ...NOW, pollMs: 60_000 });
    try {
      await worker.drain();
      const created = await post(aDevice({ serialNumber: 'KICK-1' }));

      // act
      worker.kick();

      // assert: processed while the test still runs (a worker left asleep fails it by the test timeout)
      await untilComplete(created.id);
      expect(worker.processed).toBe(1);
    } finally {
      await worker.stop();
    }
  });

  it('polls: devices stored while it sleeps are processed at the next poll, without a kick', async () => {
    const worker = startImportWorker(db, silent, { ...NOW, pollMs: 25 });
    try {
      await worker.drain();
      const created = await post(aDevice({ serialNumber: 'POLL-1' }));

      await untilComplete(created.id);
      expect(worker.processed).toBe(1);
    } finally {
      await worker.stop();
    }
  });

  it.each([
    ['a negative delay', { delayMs: -1 }],
    ['an empty batch', { batchSize: 0 }],
    ['a fractional poll interval', { pollMs: 0.5 }],
  ])('refuses to start with %s', (_case, options) => {
    expect(() => startImportWorker(db, silent, { ...NOW, ...options })).toThrow(RangeError);
  });

  it('processes 10,000 devices, each once', async () => {
    await importMany(Array.from({ length: 10_000 }, (_, i) => aDevice({ serialNumber: `BULK-${i}` })));

    const processed = await runWorker();

    expect(processed).toBe(10_000);
    expect(await countWhere(REGISTERED, `"serialNumber" LIKE ${p(1)}`, ['BULK-%'])).toBe(10_000);
    expect(await countWhere(IMPORTED, `"serialNumber" LIKE ${p(1)} AND "stateDeviceImportStatus" = 3 AND "version" = 2`, ['BULK-%'])).toBe(10_000);
  }, 180_000);
});

// SQLite: triggers keep an upload's status (migration 1764600000000); PostgreSQL's follow in another change.
(onPostgres() ? describe.skip : describe)('upload status (SQLite)', () => {
  it('follows its devices: complete when all completed, error when one failed', async () => {
    const good = await service.request('POST', UPLOADS, { body: { deviceIdentities: [aDevice({ serialNumber: 'UP-1' }), aDevice({ serialNumber: 'UP-2' })] } });
    const bad = await service.request('POST', UPLOADS, { body: { deviceIdentities: [aDevice({ serialNumber: 'UP-3' }), aDevice({ serialNumber: 'UP-4', hardwareIdentifier: null })] } });
    expect((await service.get(`${UPLOADS}/${good.body.id}`)).body.status).toBe('pending');

    await runWorker();

    expect((await service.get(`${UPLOADS}/${good.body.id}`)).body.status).toBe('complete');
    expect((await service.get(`${UPLOADS}/${bad.body.id}`)).body.status).toBe('error');
  });
});

(onPostgres() ? describe.skip : describe)('the claim query (SQLite)', () => {
  it('is served by the partial index over due devices', async () => {
    // arrange: capture the SQL the worker's claim runs
    const statements: string[] = [];
    const logger = db.dataSource.logger;
    const original = logger.logQuery.bind(logger);
    logger.logQuery = (query, parameters, runner) => {
      statements.push(query);
      return original(query, parameters, runner);
    };
    try {
      await runWorker();
    } finally {
      logger.logQuery = original;
    }
    const claim = statements.find((s) => /^SELECT .* FROM "importedWindowsAutopilotDeviceIdentity" WHERE .* ORDER BY "storedAt", "id"/s.test(s));
    expect(claim).toBeDefined();

    // act
    const plan: { detail: string }[] = await db.dataSource.query(`EXPLAIN QUERY PLAN ${claim}`, [0]);

    // assert: the index, and no sort (it reads in order)
    expect(plan.map((r) => r.detail).join('\n')).toMatch(/USING INDEX IX_device_import_due/);
    expect(plan.map((r) => r.detail).join('\n')).not.toMatch(/TEMP B-TREE/);
  });
});

// Several instances share one PostgreSQL database (SPEC §1 scale-out): each runs a worker.
(onPostgres() ? describe : describe.skip)('two workers on one PostgreSQL database', () => {
  let other: Database;
  beforeAll(async () => {
    other = await Database.open(urlOf(db), { migrate: false });
  });
  afterAll(() => other?.close());

  it('process 2,000 devices between them, each exactly once', async () => {
    // arrange
    await importMany(Array.from({ length: 2000 }, (_, i) => aDevice({ serialNumber: `PAIR-${i}` })));
    const a = startImportWorker(db, silent, { ...NOW, batchSize: 50 });
    const b = startImportWorker(other, silent, { ...NOW, batchSize: 50 });

    // act
    try {
      await Promise.all([a.drain(), b.drain()]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }

    // assert: both worked, together on every device once (one state change each), one registration per device
    expect(a.processed).toBeGreaterThan(0);
    expect(b.processed).toBeGreaterThan(0);
    expect(a.processed + b.processed).toBe(2000);
    expect(await countWhere(IMPORTED, `"serialNumber" LIKE $1 AND "stateDeviceImportStatus" = 3 AND "version" = 2`, ['PAIR-%'])).toBe(2000);
    expect(await countWhere(REGISTERED, `"serialNumber" LIKE $1`, ['PAIR-%'])).toBe(2000);
    const [{ n }] = await db.dataSource.query(
      `SELECT COUNT(DISTINCT "stateDeviceRegistrationId") AS n FROM "${IMPORTED}" WHERE "serialNumber" LIKE $1`,
      ['PAIR-%'],
    );
    expect(Number(n)).toBe(2000);
  });

  it('never both register a serial that devices in their concurrent batches share', async () => {
    // arrange: 500 serials, each imported twice side by side: twins are stored by one statement, at one instant, so
    // in key order (random GUIDs) they fall into batches the two workers claim at the same time
    const serials = Array.from({ length: 500 }, (_, i) => `RACE-${i}`);
    await importMany(serials.flatMap((serialNumber) => [aDevice({ serialNumber }), aDevice({ serialNumber })]));
    const a = startImportWorker(db, silent, { ...NOW, batchSize: 10 });
    const b = startImportWorker(other, silent, { ...NOW, batchSize: 10 });

    // act
    try {
      await Promise.all([a.drain(), b.drain()]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }

    // assert: one registration per serial; per serial one device complete, the other 806
    expect(await countWhere(REGISTERED, `"serialNumber" LIKE $1`, ['RACE-%'])).toBe(500);
    const outcomes: { serialNumber: string; codes: string }[] = await db.dataSource.query(
      `SELECT "serialNumber", string_agg(CAST("stateDeviceErrorCode" AS text), ',' ORDER BY "stateDeviceErrorCode") AS codes
       FROM "${IMPORTED}" WHERE "serialNumber" LIKE $1 GROUP BY "serialNumber"`,
      ['RACE-%'],
    );
    expect(outcomes).toHaveLength(500);
    expect(outcomes.filter((o) => o.codes !== '0,806')).toEqual([]);
  });
});

/** The connection URL of a PostgreSQL Database (its schema in search_path). */
function urlOf(database: Database): string {
  return (database.dataSource.options as { url: string }).url;
}
