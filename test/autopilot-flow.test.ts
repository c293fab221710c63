import { tmpdir } from 'node:os';
import { HASH_64 } from './fixtures/devices';
import { freshDatabaseUrl, GUID, LIVE, startService, TestService, token, UPLOADS } from './support/service';

/**
 * The Autopilot import as Intune does it, over HTTP with the import worker running (IMPORT_DELAY_MS=0): devices start
 * `unknown`, then read `complete` with the id of the registered device they created, or `error` 802/806/808.
 */
const REGISTERED = 'deviceManagement/windowsAutopilotDeviceIdentities';
const WORKER = { IMPORT_WORKER: 'on', IMPORT_DELAY_MS: '0', IMPORT_POLL_MS: '20', SYNC_MIN_INTERVAL_S: '0', SYNC_DURATION_MS: '0' };

let service: TestService;
beforeAll(async () => {
  service = await startService(WORKER);
});
afterAll(() => service.close());

const serial = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
const as = async (tenant: string) => ({ Authorization: `Bearer ${await token(tenant)}` });

/** What Get-WindowsAutopilotInfo -Online POSTs: `state` the server owns, empty strings for absent values, no `#`. */
function scriptBody(serialNumber: string, overrides: Record<string, unknown> = {}) {
  return {
    '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentity',
    groupTag: 'Sales',
    serialNumber,
    productKey: '',
    hardwareIdentifier: HASH_64,
    assignedUserPrincipalName: '',
    state: {
      '@odata.type': 'microsoft.graph.importedWindowsAutopilotDeviceIdentityState',
      deviceImportStatus: 'pending',
      deviceRegistrationId: '',
      deviceErrorCode: 0,
      deviceErrorName: '',
    },
    ...overrides,
  };
}

/** Polls `url` (as the scripts do, bounded) until `done` holds for its body; returns the last body. */
async function pollUntil(svc: TestService, url: string, done: (body: any) => boolean, headers?: Record<string, string>) {
  for (let i = 0; i < 200; i++) {
    const res = await svc.get(url, { headers });
    if (res.status === 200 && done(res.body)) return res.body;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${url} never reached the expected state`);
}
const processed = (body: any) => !['unknown', 'pending'].includes(body.state.deviceImportStatus);

async function imported(svc: TestService, body: Record<string, unknown>, headers?: Record<string, string>) {
  const created = await svc.request('POST', LIVE, { body, headers });
  expect(created.status).toBe(201);
  expect(created.body.state).toMatchObject({ deviceImportStatus: 'unknown', deviceRegistrationId: null, deviceErrorCode: 0, deviceErrorName: null });
  return pollUntil(svc, `${LIVE}/${created.body.id}`, processed, headers);
}

describe('an imported device is processed once', () => {
  it('completes, naming the registered device it created, which carries the imported values', async () => {
    const sn = serial('OK');
    const device = await imported(service, scriptBody(sn, { orderIdentifier: 'PO-7', productKey: 'PK-1', assignedUserPrincipalName: 'ann@contoso.com' }));

    expect(device.state).toEqual({
      '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentityState',
      deviceImportStatus: 'complete',
      deviceRegistrationId: expect.stringMatching(GUID),
      deviceErrorCode: 0,
      deviceErrorName: null,
    });
    const registered = await service.get(`${REGISTERED}/${device.state.deviceRegistrationId}`);
    expect(registered.status).toBe(200);
    expect(registered.body).toMatchObject({
      id: device.state.deviceRegistrationId,
      serialNumber: sn,
      groupTag: 'Sales',
      productKey: 'PK-1',
      purchaseOrderIdentifier: 'PO-7',
      userPrincipalName: 'ann@contoso.com',
      addressableUserName: 'ann@contoso.com',
      enrollmentState: 'notContacted',
    });
    expect(registered.body.azureActiveDirectoryDeviceId).toMatch(GUID);
    expect(registered.body.azureAdDeviceId).toBe(registered.body.azureActiveDirectoryDeviceId);
  });

  it.each([
    ['no hash', { hardwareIdentifier: null }],
    ['an empty hash', { hardwareIdentifier: '' }],
    ['a 63-byte hash', { hardwareIdentifier: Buffer.alloc(63, 1).toString('base64') }],
  ])('%s → error 802 InvalidZtdHardwareHash, nothing registered', async (_what, overrides) => {
    const sn = serial('HASH');
    const device = await imported(service, scriptBody(sn, overrides));
    expect(device.state).toMatchObject({ deviceImportStatus: 'error', deviceErrorCode: 802, deviceErrorName: 'InvalidZtdHardwareHash', deviceRegistrationId: null });
    expect((await service.get(`${REGISTERED}?$filter=serialNumber eq '${sn}'`)).body.value).toEqual([]);
  });

  it('a serial already registered in the tenant → 806; after DELETE of the registered device it imports again', async () => {
    const sn = serial('DUP');
    const first = await imported(service, scriptBody(sn));
    const second = await imported(service, scriptBody(sn));
    expect(second.state).toMatchObject({ deviceImportStatus: 'error', deviceErrorCode: 806, deviceErrorName: 'ZtdDeviceAlreadyAssigned' });

    expect((await service.request('DELETE', `${REGISTERED}/${first.state.deviceRegistrationId}`)).status).toBe(204);
    const third = await imported(service, scriptBody(sn));

    expect(third.state.deviceImportStatus).toBe('complete');
    expect(third.state.deviceRegistrationId).not.toBe(first.state.deviceRegistrationId);
  });

  it('a serial registered in another tenant → 808 ZtdDeviceAssignedToOtherTenant', async () => {
    const sn = serial('TEN');
    await imported(service, scriptBody(sn), await as('tenant-a'));
    const other = await imported(service, scriptBody(sn), await as('tenant-b'));
    expect(other.state).toMatchObject({ deviceImportStatus: 'error', deviceErrorCode: 808, deviceErrorName: 'ZtdDeviceAssignedToOtherTenant' });
  });

  it('the import action and a deep insert are processed too; the upload\'s status follows (pending → complete / error)', async () => {
    const good = serial('UP');
    const upload = await service.request('POST', UPLOADS, { body: { deviceIdentities: [scriptBody(good)] } });
    expect(upload.status).toBe(201);
    expect(upload.body.status).toBe('pending');
    const done = await pollUntil(service, `${UPLOADS}/${upload.body.id}`, (b) => b.status !== 'pending');
    expect(done.status).toBe('complete');

    const action = await service.request('POST', `${UPLOADS}/${upload.body.id}/deviceIdentities/import`, {
      body: { importedWindowsAutopilotDeviceIdentities: [scriptBody(serial('UP')), scriptBody(serial('UP'), { hardwareIdentifier: null })] },
    });
    expect(action.status).toBe(200);
    expect(action.body.value.map((d: any) => d.state.deviceImportStatus)).toEqual(['unknown', 'unknown']);
    const failed = await pollUntil(service, `${UPLOADS}/${upload.body.id}`, (b) => b.status !== 'pending');
    expect(failed.status).toBe('error');
  });
});

describe('pending work survives a restart and is processed exactly once', () => {
  it('devices stored while no worker ran are processed by the next start', async () => {
    const url = await freshDatabaseUrl();
    const file = url.startsWith('sqlite') ? `sqlite:${tmpdir()}/restart-${process.pid}-${Date.now()}.sqlite` : url;
    const before = await startService({ IMPORT_WORKER: 'off' }, file);
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push((await before.request('POST', LIVE, { body: scriptBody(serial('RS')) })).body.id);
    await before.app.close();

    const after = await startService(WORKER, file);
    try {
      await after.app.worker!.drain();
      for (const id of ids) expect((await after.get(`${LIVE}/${id}`)).body.state.deviceImportStatus).toBe('complete');
      const registered = await after.get(`${REGISTERED}?$count=true&$top=0`);
      expect(registered.body['@odata.count']).toBe(25);
      expect(after.app.worker!.processed).toBe(25);
    } finally {
      await after.close();
    }
  });
});

describe('the Autopilot CSV', () => {
  const HEADER = 'Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User';

  it('autopilotDeviceStream → import gives the same devices (round trip)', async () => {
    const source = await service.request('POST', UPLOADS, {
      body: {
        deviceIdentities: [
          { serialNumber: 'CSV,1', productKey: 'PK "q"', hardwareIdentifier: HASH_64, groupTag: 'g1', assignedUserPrincipalName: 'a@contoso.com' },
          { serialNumber: 'CSV-2', hardwareIdentifier: HASH_64 },
        ],
      },
    });
    const stream = await service.get(`${UPLOADS}/${source.body.id}/autopilotDeviceStream()`);
    expect(stream.status).toBe(200);
    expect(stream.body.value.split('\r\n')[0]).toBe(HEADER);

    const target = (await service.request('POST', UPLOADS, { body: {} })).body.id;
    const res = await service.request('POST', `${UPLOADS}/${target}/deviceIdentities/import`, { body: stream.body.value, headers: { 'Content-Type': 'text/csv' } });

    expect(res.status).toBe(200);
    const pick = (d: any) => [d.serialNumber, d.productKey, d.hardwareIdentifier, d.groupTag, d.assignedUserPrincipalName];
    expect(res.body.value.map(pick).sort()).toEqual(source.body.deviceIdentities.map(pick).sort());
  });

  it('a malformed row → 400 naming its line, nothing stored', async () => {
    const target = (await service.request('POST', UPLOADS, { body: {} })).body.id;
    const csv = `${HEADER}\r\nOK-1,PK,${HASH_64},g,u\r\nBAD-2,PK,${HASH_64}\r\n`;
    const res = await service.request('POST', `${UPLOADS}/${target}/deviceIdentities/import`, { body: csv, headers: { 'Content-Type': 'text/csv' } });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/line 3/);
    expect((await service.get(`${UPLOADS}/${target}/deviceIdentities/$count`)).text).toBe('0');
  });
});

describe("a script's whole flow (Get-WindowsAutopilotInfo -Online, WindowsAutopilotIntune)", () => {
  it('POST, poll while unknown, GET the registered device, UpdateDeviceProperties, sync, DELETE the imported record', async () => {
    const sn = serial('SCRIPT');
    // 1. create, as the script builds it
    const created = await service.request('POST', LIVE, { body: scriptBody(sn) });
    expect(created.status).toBe(201);
    // 2. poll the list with the script's filter (slash before ?, quote unencoded) while unknown
    const found = await pollUntil(service, `${LIVE}/?$filter=contains(serialNumber,'${sn}')`, (b) => b.value.length === 1 && processed(b.value[0]));
    const record = found.value[0];
    expect(record.state.deviceImportStatus).toBe('complete');
    // 3. the registered device by state.deviceRegistrationId
    const registration = record.state.deviceRegistrationId;
    expect((await service.get(`${REGISTERED}/${registration}`)).status).toBe(200);
    // 4. Set-AutopilotDevice: PascalCase action segment, unquoted member names
    const update = await service.request('POST', `${REGISTERED}/${registration}/UpdateDeviceProperties`, {
      body: `{ displayName: "PC-0042", groupTag: "Kiosk" }`,
      headers: { 'Content-Type': 'application/json' },
    });
    expect(update.status).toBe(204);
    expect((await service.get(`${REGISTERED}/${registration}`)).body).toMatchObject({ displayName: 'PC-0042', groupTag: 'Kiosk' });
    // 5. Invoke-AutopilotSync
    expect((await service.request('POST', 'deviceManagement/windowsAutopilotSettings/sync')).status).toBe(204);
    // 6. Import-AutopilotCSV removes the imported record; the registration stays
    expect((await service.request('DELETE', `${LIVE}/${record.id}`)).status).toBe(204);
    expect((await service.get(`${LIVE}/${record.id}`)).status).toBe(404);
    expect((await service.get(`${REGISTERED}/${registration}`)).status).toBe(200);
  });
});
