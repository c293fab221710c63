import { aDevice, HASH_64 } from './fixtures/devices';
import { DEFAULT_UPLOAD, GUID, LIVE, startService, TestService, UPLOADS } from './support/service';

/**
 * PATCH, PUT, @odata.type and ETags to the letter (OData 4.01 Part 1 §11.4.3, SPEC §4). Every rejected request is
 * checked twice: the error the client sees, and the stored entity read back unchanged.
 */
let service: TestService;
let uploadId: string;

beforeAll(async () => {
  service = await startService();
  const upload = await service.request('POST', UPLOADS, { body: {} });
  uploadId = upload.body.id;
});
afterAll(() => service.close());

/** The three device collections, each addressed as Graph clients do. */
const collections: [string, () => string][] = [
  ['contained (S1)', () => `${UPLOADS}/${uploadId}/deviceIdentities`],
  ['default upload (S2)', () => `${DEFAULT_UPLOAD}/deviceIdentities`],
  ['live', () => LIVE],
];

async function createDevice(collection: string, overrides: Record<string, unknown> = {}) {
  const res = await service.request('POST', collection, { body: aDevice(overrides) });
  expect(res.status).toBe(201);
  return res.body as Record<string, any>;
}

const strip = ({ '@odata.context': _c, '@odata.etag': _e, ...rest }: Record<string, any>) => rest;

describe.each(collections)('PATCH a device in the %s collection', (_name, collectionOf) => {
  let collection: string;
  let device: Record<string, any>;
  beforeEach(async () => {
    collection = collectionOf();
    device = await createDevice(collection);
  });
  const url = () => `${collection}/${device.id}`;

  it.each([
    ['merges: omitted properties unchanged', { groupTag: 'new' }, (d: any) => ({ ...d, groupTag: 'new' })],
    ['merges state recursively', { state: { deviceErrorCode: 806 } }, (d: any) => ({ ...d, state: { ...d.state, deviceErrorCode: 806 } })],
    [
      'merges state with its @odata.type without #',
      { state: { '@odata.type': 'microsoft.graph.importedWindowsAutopilotDeviceIdentityState', deviceImportStatus: 'complete', deviceRegistrationId: 'r-1' } },
      (d: any) => ({ ...d, state: { ...d.state, deviceImportStatus: 'complete', deviceRegistrationId: 'r-1' } }),
    ],
    ['null clears a nullable property', { groupTag: null, orderIdentifier: null }, (d: any) => ({ ...d, groupTag: null, orderIdentifier: null })],
    ['null clears state', { state: null }, (d: any) => ({ ...d, state: null })],
    ['ignores the key', { id: '00000000-0000-0000-0000-000000000000', groupTag: 'k' }, (d: any) => ({ ...d, groupTag: 'k' })],
    ['accepts base64url Binary', { hardwareIdentifier: '-_8' }, (d: any) => ({ ...d, hardwareIdentifier: '+/8=' })],
    ['accepts unpadded base64', { hardwareIdentifier: 'AAEC' }, (d: any) => ({ ...d, hardwareIdentifier: 'AAEC' })],
    ['accepts @odata.type with #', { '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentity', groupTag: 'h' }, (d: any) => ({ ...d, groupTag: 'h' })],
    ['accepts @odata.type without #', { '@odata.type': 'microsoft.graph.importedWindowsAutopilotDeviceIdentity', groupTag: 'n' }, (d: any) => ({ ...d, groupTag: 'n' })],
    ['accepts @odata.type in alias form', { '@odata.type': '#graph.importedWindowsAutopilotDeviceIdentity', groupTag: 'a' }, (d: any) => ({ ...d, groupTag: 'a' })],
    ['ignores unknown annotations', { 'groupTag@ns.note': 'x', '@ns.note': 1, groupTag: 'y' }, (d: any) => ({ ...d, groupTag: 'y' })],
  ])('%s', async (_rule, body, expected) => {
    // act
    const res = await service.request('PATCH', url(), { body });

    // assert: the response and the stored entity both show the merge
    expect(res.status).toBe(200);
    const want = expected(strip(device));
    expect(strip(res.body)).toEqual(want);
    const read = await service.get(url());
    expect(strip(read.body)).toEqual(want);
  });

  it.each([
    ['null on a non-nullable complex member', { state: { deviceErrorCode: null } }, 'state/deviceErrorCode'],
    ['null on deviceImportStatus', { state: { deviceImportStatus: null } }, 'state/deviceImportStatus'],
    ['a number for a string', { groupTag: 5 }, 'groupTag'],
    ['a string for state', { state: 'pending' }, 'state'],
    ['a fraction for Int32', { state: { deviceErrorCode: 1.5 } }, 'state/deviceErrorCode'],
    ['an Int32 out of range', { state: { deviceErrorCode: 2147483648 } }, 'state/deviceErrorCode'],
    ['a number for an enum', { state: { deviceImportStatus: 3 } }, 'state/deviceImportStatus'],
    ['an unknown property', { groupTag: 'ok', nosuch: 1 }, 'nosuch'],
    ['an unknown state property', { state: { nosuch: 1 } }, 'state/nosuch'],
    ['an invalid enum member', { state: { deviceImportStatus: 'done' } }, 'state/deviceImportStatus'],
    ['undecodable base64', { hardwareIdentifier: 'not base64!' }, 'hardwareIdentifier'],
    ['a base64 length that cannot be', { hardwareIdentifier: 'AAAAA' }, 'hardwareIdentifier'],
    ['another entity type', { '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload', groupTag: 'x' }, '@odata.type'],
    ['the abstract base type', { '@odata.type': '#microsoft.graph.entity' }, '@odata.type'],
    ['an unknown type', { '@odata.type': '#microsoft.graph.nosuch' }, '@odata.type'],
    ['a non-string @odata.type', { '@odata.type': 5 }, '@odata.type'],
    ['a wrong type on state', { state: { '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentity' } }, 'state/@odata.type'],
    ['a navigation binding', { 'deviceIdentities@odata.bind': ['x'] }, 'deviceIdentities@odata.bind'],
    ['a NUL character in a string', { groupTag: 'a\u0000b' }, 'groupTag'],
    ['a string over 4000 characters', { serialNumber: 'x'.repeat(4001) }, 'serialNumber'],
    ['a binary over 64 KiB', { hardwareIdentifier: Buffer.alloc(64 * 1024 + 1).toString('base64') }, 'hardwareIdentifier'],
  ])('rejects %s with 400 naming the property, and changes nothing', async (_rule, body, target) => {
    // act
    const res = await service.request('PATCH', url(), { body: { groupTag: 'must-not-stick', ...body } });

    // assert
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('BadRequest');
    expect(res.body.error.target).toBe(target);
    expect(res.body.error.message).toEqual(expect.any(String));
    const read = await service.get(url());
    expect(read.body).toEqual({ ...device, '@odata.context': read.body['@odata.context'] });
  });

  it.each([
    ['an array', '[]'],
    ['null', 'null'],
    ['a string', '"x"'],
    ['malformed JSON', '{"groupTag": '],
  ])('rejects a body that is %s with 400', async (_what, text) => {
    const res = await service.request('PATCH', url(), { body: text, headers: { 'Content-Type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('BadRequest');
    expect((await service.get(url())).body['@odata.etag']).toBe(device['@odata.etag']);
  });

  it('answers 404 for a device that does not exist', async () => {
    const res = await service.request('PATCH', `${collection}/00000000-0000-0000-0000-000000000001`, { body: { groupTag: 'x' } });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('ResourceNotFound');
  });
});

describe('PUT replaces', () => {
  it('sets omitted nullable properties to null and keeps the key', async () => {
    const device = await createDevice(LIVE, { orderIdentifier: 'o-1' });
    const res = await service.request('PUT', `${LIVE}/${device.id}`, { body: { groupTag: 'only' } });
    expect(res.status).toBe(200);
    const expected = {
      '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentity',
      id: device.id,
      orderIdentifier: null,
      groupTag: 'only',
      serialNumber: null,
      productKey: null,
      importId: null,
      hardwareIdentifier: null,
      state: null,
      assignedUserPrincipalName: null,
    };
    expect(strip(res.body)).toEqual(expected);
    expect(strip((await service.get(`${LIVE}/${device.id}`)).body)).toEqual(expected);
  });

  it('gives a partial state the defaults of its non-nullable members', async () => {
    const device = await createDevice(LIVE);
    const res = await service.request('PUT', `${LIVE}/${device.id}`, { body: { state: { deviceRegistrationId: 'r' } } });
    expect(res.status).toBe(200);
    expect(res.body.state).toEqual({
      '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentityState',
      deviceImportStatus: 'unknown',
      deviceRegistrationId: 'r',
      deviceErrorCode: 0,
      deviceErrorName: null,
    });
  });
  it.each([
    ['a null state takes the defaults of its non-nullable members', null, { deviceImportStatus: 'unknown', deviceErrorCode: 0, deviceErrorName: null }],
    [
      'a stored state keeps its other members',
      { deviceImportStatus: 'error', deviceErrorCode: 806, deviceErrorName: 'ZtdDeviceAlreadyAssigned' },
      { deviceImportStatus: 'error', deviceErrorCode: 806, deviceErrorName: 'ZtdDeviceAlreadyAssigned' },
    ],
  ])('PATCH of one state member: %s', async (_rule, stored, others) => {
    const device = await createDevice(LIVE);
    expect((await service.request('PATCH', `${LIVE}/${device.id}`, { body: { state: stored } })).status).toBe(200);
    const res = await service.request('PATCH', `${LIVE}/${device.id}`, { body: { state: { deviceRegistrationId: 'r' } } });
    const expected = { '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentityState', ...others, deviceRegistrationId: 'r' };
    expect(res.status).toBe(200);
    expect(res.body.state).toEqual(expected);
    expect((await service.get(`${LIVE}/${device.id}`)).body.state).toEqual(expected);
  });
});

describe('PATCH an upload', () => {
  it.each([
    ['null createdDateTimeUtc', { createdDateTimeUtc: null }, 'createdDateTimeUtc'],
    ['null status', { status: null }, 'status'],
    ['an unknown status', { status: 'finished' }, 'status'],
    ['a malformed date', { createdDateTimeUtc: 'yesterday' }, 'createdDateTimeUtc'],
    ['an unknown property', { nosuch: true }, 'nosuch'],
    ['inline devices (deep update)', { deviceIdentities: [] }, 'deviceIdentities'],
  ])('rejects %s with 400', async (_rule, body, target) => {
    const before = await service.get(`${UPLOADS}/${uploadId}`);
    const res = await service.request('PATCH', `${UPLOADS}/${uploadId}`, { body });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'BadRequest', target });
    expect((await service.get(`${UPLOADS}/${uploadId}`)).body).toEqual(before.body);
  });

  it('ignores server-set properties in a valid body', async () => {
    const before = await service.get(`${UPLOADS}/${uploadId}`);
    const res = await service.request('PATCH', `${UPLOADS}/${uploadId}`, {
      body: { '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload', id: 'x', status: 'complete', createdDateTimeUtc: '2001-01-01T00:00:00Z' },
    });
    expect(res.status).toBe(200);
    expect(strip(res.body)).toEqual(strip(before.body));
  });
});

describe('PATCH on a deviceIdentities collection', () => {
  const contained = () => `${UPLOADS}/${uploadId}/deviceIdentities`;

  it('inserts a body without id, with a server GUID, answering 200', async () => {
    const res = await service.request('PATCH', contained(), { body: aDevice({ serialNumber: 'UPSERT-1' }) });
    expect(res.status).toBe(200);
    expect(res.body.id).toMatch(GUID);
    expect(res.body.state.deviceImportStatus).toBe('unknown');
    expect((await service.get(`${contained()}/${res.body.id}`)).body.serialNumber).toBe('UPSERT-1');
  });

  it('merges a body with the id of a member', async () => {
    const device = await createDevice(contained());
    const res = await service.request('PATCH', contained(), { body: { id: device.id, groupTag: 'merged' } });
    expect(res.status).toBe(200);
    expect(strip(res.body)).toEqual({ ...strip(device), groupTag: 'merged' });
  });

  it.each([
    ['of a device in another upload', async () => (await createDevice(`${DEFAULT_UPLOAD}/deviceIdentities`)).id],
    ['of a live device', async () => (await createDevice(LIVE)).id],
    ['that does not exist', () => Promise.resolve('00000000-0000-0000-0000-000000000002')],
  ])('answers 404 for an id %s, changing nothing', async (_what, idOf) => {
    const id = await idOf();
    const before = await service.get(`${contained()}?$count=true`);
    const res = await service.request('PATCH', contained(), { body: { id, groupTag: 'stolen' } });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('ResourceNotFound');
    expect((await service.get(`${contained()}?$count=true`)).body['@odata.count']).toBe(before.body['@odata.count']);
  });

  it('applies a 4.01 delta payload: upserts and @removed entries', async () => {
    // arrange
    const keep = await createDevice(contained(), { serialNumber: 'DELTA-KEEP' });
    const gone = await createDevice(contained(), { serialNumber: 'DELTA-GONE' });

    // act
    const res = await service.request('PATCH', contained(), {
      body: {
        '@context': '#$delta',
        value: [
          { id: keep.id, groupTag: 'delta' },
          aDevice({ serialNumber: 'DELTA-NEW' }),
          { '@removed': { reason: 'deleted' }, id: gone.id },
        ],
      },
    });

    // assert
    expect(res.status).toBe(200);
    expect(res.body['@odata.context']).toBe(`${service.root}/$metadata#${UPLOADS}('${uploadId}')/deviceIdentities/$delta`);
    expect(res.body.value).toHaveLength(3);
    expect(res.body.value[0]).toMatchObject({ id: keep.id, groupTag: 'delta', serialNumber: 'DELTA-KEEP' });
    expect(res.body.value[1]).toMatchObject({ serialNumber: 'DELTA-NEW', state: { deviceImportStatus: 'unknown' } });
    expect(res.body.value[2]).toEqual({ '@removed': { reason: 'deleted' }, id: gone.id });
    expect((await service.get(`${contained()}/${keep.id}`)).body.groupTag).toBe('delta');
    expect((await service.get(`${contained()}/${gone.id}`)).status).toBe(404);
    expect((await service.get(`${contained()}/${res.body.value[1].id}`)).status).toBe(200);
  });

  it.each([
    ['an invalid entry', (id: string) => ({ id, nosuch: 1 }), 400],
    ['a removed entry that is not a member', () => ({ '@removed': {}, id: '00000000-0000-0000-0000-000000000003' }), 404],
    ['an upsert of a non-member', () => ({ id: '00000000-0000-0000-0000-000000000004', groupTag: 'x' }), 404],
  ])('applies nothing when one entry is %s', async (_what, badEntry, status) => {
    // arrange
    const device = await createDevice(contained(), { groupTag: 'before' });
    const count = (await service.get(`${contained()}/$count`)).text;

    // act
    const res = await service.request('PATCH', contained(), {
      body: { '@context': '#$delta', value: [{ id: device.id, groupTag: 'after' }, aDevice({ serialNumber: 'NEVER' }), badEntry(device.id)] },
    });

    // assert
    expect(res.status).toBe(status);
    expect((await service.get(`${contained()}/${device.id}`)).body.groupTag).toBe('before');
    expect((await service.get(`${contained()}/$count`)).text).toBe(count);
  });
});

describe('ETags, preconditions and Prefer', () => {
  let device: Record<string, any>;
  let url: string;
  beforeEach(async () => {
    device = await createDevice(LIVE);
    url = `${LIVE}/${device.id}`;
  });

  it('sends the ETag on reads and changes it on every update', async () => {
    const read = await service.get(url);
    expect(read.headers.get('etag')).toBe(device['@odata.etag']);
    const first = await service.request('PATCH', url, { body: { groupTag: 'v2' } });
    const second = await service.request('PATCH', url, { body: { groupTag: 'v3' } });
    expect(new Set([device['@odata.etag'], first.headers.get('etag'), second.headers.get('etag')]).size).toBe(3);
    expect(second.body['@odata.etag']).toBe(second.headers.get('etag'));
  });

  it.each([
    ['PATCH', { groupTag: 'stale' }],
    ['PUT', { groupTag: 'stale' }],
    ['DELETE', undefined],
  ])('%s with a stale If-Match answers 412 and changes nothing', async (method, body) => {
    await service.request('PATCH', url, { body: { groupTag: 'moved-on' } });
    const before = await service.get(url);
    const res = await service.request(method, url, { body, headers: { 'If-Match': device['@odata.etag'] } });
    expect(res.status).toBe(412);
    expect(res.body.error.code).toBe('PreconditionFailed');
    expect((await service.get(url)).body).toEqual(before.body);
  });

  it('honours a matching If-Match and If-Match: *', async () => {
    const res = await service.request('PATCH', url, { body: { groupTag: 'match' }, headers: { 'If-Match': device['@odata.etag'] } });
    expect(res.status).toBe(200);
    const star = await service.request('PATCH', url, { body: { groupTag: 'star' }, headers: { 'If-Match': '*' } });
    expect(star.status).toBe(200);
    expect(star.body.groupTag).toBe('star');
  });

  it('never inserts on If-Match: * for a missing entity', async () => {
    const missing = '00000000-0000-0000-0000-000000000005';
    const res = await service.request('PATCH', `${LIVE}/${missing}`, { body: { groupTag: 'x' }, headers: { 'If-Match': '*' } });
    expect(res.status).toBe(412);
    const viaCollection = await service.request('PATCH', LIVE, { body: { id: missing, groupTag: 'x' }, headers: { 'If-Match': '*' } });
    expect(viaCollection.status).toBe(412);
    expect((await service.get(`${LIVE}/${missing}`)).status).toBe(404);
  });

  it('answers 304 to If-None-Match with the current ETag', async () => {
    const res = await service.get(url, { headers: { 'If-None-Match': device['@odata.etag'] } });
    expect(res.status).toBe(304);
    expect(res.text).toBe('');
  });

  it('answers 204 with Preference-Applied for return=minimal, and the change is stored', async () => {
    const res = await service.request('PATCH', url, { body: { groupTag: 'minimal' }, headers: { Prefer: 'return=minimal' } });
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(res.headers.get('preference-applied')).toBe('return=minimal');
    expect(res.headers.get('etag')).toMatch(/^W\/".+"$/);
    expect((await service.get(url)).body.groupTag).toBe('minimal');
  });

  it('answers 200 with the entity for return=representation', async () => {
    const res = await service.request('PATCH', url, { body: { groupTag: 'rep' }, headers: { Prefer: 'return=representation' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('preference-applied')).toBe('return=representation');
    expect(res.body.groupTag).toBe('rep');
  });

  it('lets exactly one of 50 concurrent PATCHes with the same If-Match succeed', async () => {
    // act
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        service.request('PATCH', url, { body: { groupTag: `racer-${i}` }, headers: { 'If-Match': device['@odata.etag'] } }),
      ),
    );

    // assert
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(49);
    const winner = results.find((r) => r.status === 200)!;
    expect((await service.get(url)).body.groupTag).toBe(winner.body.groupTag);
  });
});

describe('create ignores a client state and key', () => {
  it('starts every new device pending with a server GUID', async () => {
    const res = await service.request('POST', LIVE, {
      body: aDevice({ id: 'client-id', state: { deviceImportStatus: 'complete', deviceErrorCode: 15, deviceRegistrationId: 'x', deviceErrorName: 'y' } }),
    });
    expect(res.status).toBe(201);
    expect(res.body.id).toMatch(GUID);
    expect(res.headers.get('location')).toBe(`${service.root}/${LIVE}('${res.body.id}')`);
    expect(res.body.hardwareIdentifier).toBe(HASH_64);
    expect(res.body.state).toEqual({
      '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentityState',
      deviceImportStatus: 'unknown',
      deviceRegistrationId: null,
      deviceErrorCode: 0,
      deviceErrorName: null,
    });
  });

  it('still validates a client state on create', async () => {
    const res = await service.request('POST', LIVE, { body: aDevice({ state: { deviceImportStatus: 'bogus' } }) });
    expect(res.status).toBe(400);
    expect(res.body.error.target).toBe('state/deviceImportStatus');
  });
});

describe('an upload\'s status follows its devices', () => {
  it('goes noUpload → pending → error → complete → noUpload, with a new ETag at each change', async () => {
    // arrange
    const upload = (await service.request('POST', UPLOADS, { body: {} })).body;
    const url = `${UPLOADS}/${upload.id}`;
    const devices = `${url}/deviceIdentities`;
    const status = async () => {
      const res = await service.get(url);
      return [res.body.status, res.body['@odata.etag']];
    };
    const seen: string[] = [];
    const etags = new Set<string>();
    const record = async () => {
      const [s, etag] = await status();
      seen.push(s);
      etags.add(etag);
    };

    // act / assert
    await record();
    const a = (await service.request('POST', devices, { body: aDevice() })).body;
    const b = (await service.request('POST', devices, { body: aDevice() })).body;
    await record();
    await service.request('PATCH', `${devices}/${a.id}`, { body: { state: { deviceImportStatus: 'error', deviceErrorCode: 806, deviceErrorName: 'ZtdDeviceAlreadyAssigned' } } });
    await record(); // b still unknown
    await service.request('PATCH', `${devices}/${b.id}`, { body: { state: { deviceImportStatus: 'complete' } } });
    await record();
    await service.request('DELETE', `${devices}/${a.id}`);
    await record();
    await service.request('DELETE', `${devices}/${b.id}`);
    await record();
    await service.request('PATCH', devices, { body: { '@context': '#$delta', value: [aDevice()] } });
    await record();

    expect(seen).toEqual(['noUpload', 'pending', 'pending', 'error', 'complete', 'noUpload', 'pending']);
    expect(etags.size).toBe(6); // one per distinct step: the second "pending" changed nothing
  });
});
