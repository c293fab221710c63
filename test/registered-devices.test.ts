import { HASH_64 } from './fixtures/devices';
import { GUID, LIVE, startService, TestService, token, UPLOADS } from './support/service';

/**
 * deviceManagement/windowsAutopilotDeviceIdentities (registered devices), its four actions, and
 * deviceManagement/windowsAutopilotSettings with `sync` — over HTTP, as the scripts and Terraform call them.
 */
const REGISTERED = 'deviceManagement/windowsAutopilotDeviceIdentities';
const SETTINGS = 'deviceManagement/windowsAutopilotSettings';
const MIN_DATE = '0001-01-01T00:00:00Z';

let service: TestService;

beforeAll(async () => {
  service = await startService({ SYNC_MIN_INTERVAL_S: '0', SYNC_DURATION_MS: '0' });
});
afterAll(() => service.close());

async function aRegisteredDevice(body: Record<string, unknown> = {}) {
  const res = await service.request('POST', REGISTERED, { body: { serialNumber: `REG-${Math.random().toString(36).slice(2, 8)}`, groupTag: 'lab', ...body } });
  expect(res.status).toBe(201);
  return res.body;
}

describe('registered devices', () => {
  it('POST creates one with Graph\'s defaults for what was not given', async () => {
    const res = await service.request('POST', REGISTERED, { body: { serialNumber: 'REG-1', groupTag: 'lab', purchaseOrderIdentifier: 'PO-1' } });

    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${service.root}/${REGISTERED}('${res.body.id}')`);
    expect(res.body).toMatchObject({
      '@odata.context': `${service.root}/$metadata#${REGISTERED}/$entity`,
      '@odata.type': '#microsoft.graph.windowsAutopilotDeviceIdentity',
      serialNumber: 'REG-1',
      groupTag: 'lab',
      purchaseOrderIdentifier: 'PO-1',
      enrollmentState: 'notContacted',
      deploymentProfileAssignmentStatus: 'notAssigned',
      deploymentProfileAssignmentDetailedStatus: 'none',
      deploymentProfileAssignedDateTime: MIN_DATE,
      lastContactedDateTime: MIN_DATE,
      remediationState: 'unknown',
      userlessEnrollmentStatus: 'unknown',
      userPrincipalName: '',
      managedDeviceId: '00000000-0000-0000-0000-000000000000',
    });
    expect(res.body.id).toMatch(GUID);
    expect(res.body.azureActiveDirectoryDeviceId).toMatch(GUID);
    expect(res.body.azureAdDeviceId).toBe(res.body.azureActiveDirectoryDeviceId);
  });

  it('lists with contains(serialNumber,…) as the scripts send it (slash before ?, quote unencoded), and pages', async () => {
    for (const n of [1, 2, 3]) await aRegisteredDevice({ serialNumber: `PAGE-${n}` });

    const found = await service.get(`${REGISTERED}/?$filter=contains(serialNumber,'PAGE-2')`);
    const paged = await service.get(`${REGISTERED}?$filter=startswith(serialNumber,'PAGE-')&$count=true`, { headers: { Prefer: 'odata.maxpagesize=2' } });
    const next = await service.get(paged.body['@odata.nextLink']);

    expect(found.status).toBe(200);
    expect(found.body.value.map((d: { serialNumber: string }) => d.serialNumber)).toEqual(['PAGE-2']);
    expect(paged.body['@odata.count']).toBe(3);
    expect(paged.body.value).toHaveLength(2);
    expect(next.body.value).toHaveLength(1);
    expect(next.body['@odata.nextLink']).toBeUndefined();
  });

  it('PATCH merges and answers the entity', async () => {
    const device = await aRegisteredDevice();
    const res = await service.request('PATCH', `${REGISTERED}/${device.id}`, { body: { displayName: 'PC-01' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: device.id, displayName: 'PC-01', groupTag: 'lab' });
  });

  it('DELETE removes it (204, then 404)', async () => {
    const device = await aRegisteredDevice();
    expect((await service.request('DELETE', `${REGISTERED}/${device.id}`)).status).toBe(204);
    const res = await service.get(`${REGISTERED}/${device.id}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('ResourceNotFound');
  });

  it.each([
    ['updateDeviceProperties', { userPrincipalName: 'a@contoso.com', addressableUserName: 'A', groupTag: 'new', displayName: 'PC-02', deviceFriendlyName: 'desk' }, { userPrincipalName: 'a@contoso.com', addressableUserName: 'A', groupTag: 'new', displayName: 'PC-02', deviceFriendlyName: 'desk' }],
    ['UpdateDeviceProperties', '{ displayName: "PC-03", GroupTag: "tag" }', { displayName: 'PC-03', groupTag: 'tag' }],
    ['assignUserToDevice', { userPrincipalName: 'b@contoso.com', addressableUserName: 'B' }, { userPrincipalName: 'b@contoso.com', addressableUserName: 'B' }],
    ['allowNextEnrollment', undefined, { userlessEnrollmentStatus: 'allowed' }],
    ['allowNextEnrollment', {}, { userlessEnrollmentStatus: 'allowed' }],
  ])('%s %j → 204 and the device reads back changed', async (action, body, expected) => {
    const device = await aRegisteredDevice({ userPrincipalName: 'old@contoso.com' });
    const headers = typeof body === 'string' ? { 'Content-Type': 'application/json' } : undefined;

    const res = await service.request('POST', `${REGISTERED}/${device.id}/${action}`, { body, headers });

    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    const read = await service.get(`${REGISTERED}/${device.id}`);
    expect(read.body).toMatchObject(expected);
    expect(read.body['@odata.etag']).not.toBe(device['@odata.etag']);
  });

  it('unassignUserFromDevice clears the user', async () => {
    const device = await aRegisteredDevice({ userPrincipalName: 'c@contoso.com', addressableUserName: 'C' });
    expect((await service.request('POST', `${REGISTERED}/${device.id}/microsoft.graph.unassignUserFromDevice`)).status).toBe(204);
    expect((await service.get(`${REGISTERED}/${device.id}`)).body).toMatchObject({ userPrincipalName: null, addressableUserName: null });
  });

  it.each([
    ['an unknown parameter', 'updateDeviceProperties', { serialNumber: 'X' }, 400, 'serialNumber'],
    ['a wrong type', 'assignUserToDevice', { userPrincipalName: 5 }, 400, 'userPrincipalName'],
    ['a parameter to an action without any', 'allowNextEnrollment', { force: true }, 400, 'force'],
    ['a body that is not JSON', 'updateDeviceProperties', '{ displayName: ', 400, undefined],
  ])('%s → %i, nothing changes', async (_what, action, body, status, target) => {
    const device = await aRegisteredDevice();
    const res = await service.request('POST', `${REGISTERED}/${device.id}/${action}`, { body, headers: { 'Content-Type': 'application/json' } });
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe('BadRequest');
    expect(res.body.error.target).toBe(target);
    expect((await service.get(`${REGISTERED}/${device.id}`)).body['@odata.etag']).toBe(device['@odata.etag']);
  });

  it('an action on a device that is not there → 404', async () => {
    const res = await service.request('POST', `${REGISTERED}/00000000-0000-0000-0000-000000000000/allowNextEnrollment`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('ResourceNotFound');
  });

  it('GET on an action → 405 with Allow: POST', async () => {
    const device = await aRegisteredDevice();
    const res = await service.get(`${REGISTERED}/${device.id}/assignUserToDevice`);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });

  it("another tenant's registered device is 404, its list empty", async () => {
    const device = await aRegisteredDevice();
    const other = { Authorization: `Bearer ${await token('other-tenant')}` };
    expect((await service.get(`${REGISTERED}/${device.id}`, { headers: other })).status).toBe(404);
    expect((await service.request('POST', `${REGISTERED}/${device.id}/allowNextEnrollment`, { headers: other })).status).toBe(404);
    expect((await service.get(REGISTERED, { headers: other })).body.value).toEqual([]);
  });
});

describe('windowsAutopilotSettings', () => {
  it('GET answers the tenant\'s settings, never synced', async () => {
    const res = await service.get(SETTINGS, { headers: { Authorization: `Bearer ${await token('fresh-tenant')}` } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      '@odata.context': `${service.root}/$metadata#${SETTINGS}/$entity`,
      '@odata.type': '#microsoft.graph.windowsAutopilotSettings',
      '@odata.etag': res.headers.get('etag'),
      id: expect.stringMatching(GUID),
      lastSyncDateTime: MIN_DATE,
      lastManualSyncTriggerDateTime: MIN_DATE,
      syncStatus: 'unknown',
    });
  });

  it.each([
    ['no body', undefined],
    ['{}', {}],
  ])('sync with %s → 204, then the settings read completed', async (_what, body) => {
    const headers = { Authorization: `Bearer ${await token(`sync-${_what}`)}` };
    const res = await service.request('POST', `${SETTINGS}/sync`, { body, headers });
    expect(res.status).toBe(204);
    const settings = await service.get(SETTINGS, { headers });
    expect(settings.body.syncStatus).toBe('completed');
    expect(settings.body.lastSyncDateTime).not.toBe(MIN_DATE);
    expect(settings.body.lastManualSyncTriggerDateTime).toBe(settings.body.lastSyncDateTime);
  });

  it('DELETE and POST on the settings → 405', async () => {
    const res = await service.request('DELETE', SETTINGS);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, PATCH, PUT, HEAD');
  });
});

describe('sync timing: 409 while one runs, 429 within the minimum interval, per tenant', () => {
  let slow: TestService;
  beforeAll(async () => {
    slow = await startService({ SYNC_MIN_INTERVAL_S: '600', SYNC_DURATION_MS: '600000' });
  });
  afterAll(() => slow.close());

  it('a second sync while the first runs → 409; the settings read inProgress', async () => {
    const headers = { Authorization: `Bearer ${await token('t-409')}` };
    expect((await slow.request('POST', `${SETTINGS}/sync`, { headers })).status).toBe(204);
    const again = await slow.request('POST', `${SETTINGS}/sync`, { headers });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('Conflict');
    expect((await slow.get(SETTINGS, { headers })).body.syncStatus).toBe('inProgress');
    // another tenant is not affected
    expect((await slow.request('POST', `${SETTINGS}/sync`, { headers: { Authorization: `Bearer ${await token('t-409-other')}` } })).status).toBe(204);
  });

  it('a sync within the interval of a completed one → 429 TooManyRequests with Retry-After', async () => {
    const quick = await startService({ SYNC_MIN_INTERVAL_S: '600', SYNC_DURATION_MS: '0' });
    try {
      expect((await quick.request('POST', `${SETTINGS}/sync`)).status).toBe(204);
      const res = await quick.request('POST', `${SETTINGS}/sync`);
      expect(res.status).toBe(429);
      expect(res.body.error.code).toBe('TooManyRequests');
      const retry = Number(res.headers.get('retry-after'));
      expect(retry).toBeGreaterThan(590);
      expect(retry).toBeLessThanOrEqual(600);
    } finally {
      await quick.close();
    }
  });
});

describe('simulated faults (FAULT_RATE) and latency (LATENCY_MS)', () => {
  it('FAULT_RATE=100 answers every data request 429 or 503 with Retry-After, and writes nothing', async () => {
    const databaseUrl = undefined;
    const faulty = await startService({ FAULT_RATE: '100' }, databaseUrl);
    try {
      const statuses = new Set<number>();
      for (let i = 0; i < 20; i++) {
        const res = await faulty.request('POST', LIVE, { body: { serialNumber: `F-${i}`, hardwareIdentifier: HASH_64 } });
        statuses.add(res.status);
        expect(['TooManyRequests', 'ServiceUnavailable']).toContain(res.body.error.code);
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      expect([...statuses].sort()).toEqual([429, 503]);
      // $metadata is not part of the simulation; the data is untouched
      expect((await faulty.get('$metadata')).status).toBe(200);
      const count = await faulty.app.db.read((m) => m.query('SELECT COUNT(*) AS n FROM "importedWindowsAutopilotDeviceIdentity"'));
      expect(Number(count[0].n)).toBe(0);
    } finally {
      await faulty.close();
    }
  });

  it.each([['abc'], ['500-100'], ['1-70000']])('LATENCY_MS=%s is refused at start', async (value) => {
    await expect(startService({ LATENCY_MS: value })).rejects.toThrow(/LATENCY_MS/);
  });
});

describe('the uploads path is unchanged by the new sets', () => {
  it('the service document lists the singletons of the container', async () => {
    const res = await service.get('');
    expect(res.body.value.map((v: { name: string }) => v.name)).toEqual(['deviceManagement', 'importedWindowsAutopilotDeviceIdentityUpload']);
    expect((await service.get(UPLOADS)).status).toBe(200);
  });
});
