import { ImportedWindowsAutopilotDeviceIdentity } from '../entities/ImportedWindowsAutopilotDeviceIdentity';
import { aDevice, HASH_64 } from './fixtures/devices';
import { DEFAULT_UPLOAD, GUID, LIVE, startService, TestResponse, TestService, UPLOADS } from './support/service';

/**
 * The URL surface (SPEC §3), route by route and method by method: exact status, headers, @odata.context and entity
 * shape. Key addressing is checked in both of Graph's forms, `/{id}` and `('{id}')`.
 */
const DEVICE_TYPE = '#microsoft.graph.importedWindowsAutopilotDeviceIdentity';
const STATE_TYPE = '#microsoft.graph.importedWindowsAutopilotDeviceIdentityState';
const UPLOAD_TYPE = '#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload';
const JSON_TYPE = 'application/json;odata.metadata=minimal';
const WEAK_ETAG = /^W\/"[^"]+"$/;
const SECONDS_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
/** The default upload of tenant `default` (SPEC §6: a GUID derived from the tenant id). Clients may hard-code it. */
const DEFAULT_UPLOAD_ID = 'bd865b81-f32b-54ba-98aa-840768823d24';

type KeyForm = (collection: string, id: string) => string;
const segmentKey: KeyForm = (collection, id) => `${collection}/${id}`;
const parenKey: KeyForm = (collection, id) => `${collection}('${id}')`;
const KEY_FORMS: [string, KeyForm][] = [
  ['/{id}', segmentKey],
  ["('{id}')", parenKey],
];
/** Upload key form × device key form. */
const KEY_FORM_PAIRS: [string, KeyForm, string, KeyForm][] = KEY_FORMS.flatMap(([un, uf]) => KEY_FORMS.map(([dn, df]) => [un, uf, dn, df] as [string, KeyForm, string, KeyForm]));

let service: TestService;
let root: string;
/** Upload A: created with two devices inline. Upload B: empty. */
let uploadA: string;
let uploadB: string;
let devicesOfA: Record<string, any>[];
let liveDevice: Record<string, any>;
let defaultDevice: Record<string, any>;

beforeAll(async () => {
  service = await startService();
  root = service.root;
  const a = await service.request('POST', UPLOADS, {
    body: { deviceIdentities: [aDevice({ serialNumber: 'A-1' }), aDevice({ serialNumber: 'A-2', groupTag: 'tag, with "comma"' })] },
  });
  expect(a.status).toBe(201);
  uploadA = a.body.id;
  devicesOfA = a.body.deviceIdentities;
  uploadB = (await service.request('POST', UPLOADS, { body: {} })).body.id;
  liveDevice = (await service.request('POST', LIVE, { body: aDevice({ serialNumber: 'LIVE-1' }) })).body;
  defaultDevice = (await service.request('POST', `${DEFAULT_UPLOAD}/deviceIdentities`, { body: aDevice({ serialNumber: 'S2-1' }) })).body;
});
afterAll(() => service.close());

const contained = (uploadId: string, form: KeyForm = segmentKey) => `${form(UPLOADS, uploadId)}/deviceIdentities`;
const ctx = (fragment: string) => `${root}/$metadata#${fragment}`;
const ids = (res: TestResponse) => (res.body.value as { id: string }[]).map((e) => e.id).sort();

/** Every response carries these (SPEC §4). */
function expectProtocolHeaders(res: TestResponse) {
  expect(res.headers.get('odata-version')).toBe('4.0');
  expect(res.headers.get('request-id')).toMatch(GUID);
  expect(res.headers.get('client-request-id')).toBeTruthy();
}

/** A device as the service writes it: the builder's values, a server GUID, the initial state, base64 Binary. */
function expectedDevice(overrides: Record<string, unknown> = {}) {
  const { '@odata.type': _t, ...input } = aDevice(overrides);
  return {
    '@odata.type': DEVICE_TYPE,
    '@odata.etag': expect.stringMatching(WEAK_ETAG),
    id: expect.stringMatching(GUID),
    orderIdentifier: null,
    ...input,
    state: { '@odata.type': STATE_TYPE, deviceImportStatus: 'unknown', deviceRegistrationId: null, deviceErrorCode: 0, deviceErrorName: null },
  };
}

function expectUpload(body: Record<string, unknown>, id: string) {
  expect(body).toEqual({
    ...(body['@odata.context'] === undefined ? {} : { '@odata.context': expect.any(String) }),
    '@odata.type': UPLOAD_TYPE,
    '@odata.etag': expect.stringMatching(WEAK_ETAG),
    id,
    createdDateTimeUtc: expect.stringMatching(SECONDS_UTC),
    status: expect.stringMatching(/^(noUpload|pending|complete|error)$/),
  });
}

describe('service document and infrastructure', () => {
  it.each(['/beta', '/beta/'])('GET %s is the service document', async (path) => {
    const res = await service.get(path);

    expect(res.status).toBe(200);
    expectProtocolHeaders(res);
    expect(res.headers.get('content-type')).toBe(JSON_TYPE);
    expect(res.body).toEqual({
      '@odata.context': `${root}/$metadata`,
      value: [
        { name: 'deviceManagement', kind: 'Singleton', url: 'deviceManagement' },
        { name: 'importedWindowsAutopilotDeviceIdentityUpload', kind: 'Singleton', url: 'importedWindowsAutopilotDeviceIdentityUpload' },
      ],
    });
  });

  it.each(['/health', '/ready'])('GET %s answers 200 {"status":"ok"} with the protocol headers', async (path) => {
    const res = await service.get(path);

    expect(res.status).toBe(200);
    expectProtocolHeaders(res);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('GET /beta/$metadata answers the CSDL as XML', async () => {
    const res = await service.get('$metadata');

    expect(res.status).toBe(200);
    expectProtocolHeaders(res);
    expect(res.headers.get('content-type')).toBe('application/xml');
    expect(res.text).toContain('<edmx:Edmx');
  });

  it('GET deviceManagement answers the singleton', async () => {
    const res = await service.get('deviceManagement');

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ '@odata.context': ctx('deviceManagement'), '@odata.type': '#microsoft.graph.deviceManagement', id: 'default' });
  });
});

describe('GET: every readable route, with its @odata.context', () => {
  type Row = [string, () => string, () => string, 'collection' | 'entity', () => string[] | string];
  const rows: Row[] = [
    ['uploads collection', () => UPLOADS, () => ctx(UPLOADS), 'collection', () => [uploadA, uploadB, DEFAULT_UPLOAD_ID].sort()],
    ...KEY_FORMS.map(([name, form]): Row => [`upload ${name}`, () => form(UPLOADS, uploadA), () => ctx(`${UPLOADS}/$entity`), 'entity', () => uploadA]),
    ...KEY_FORMS.map(([name, form]): Row => [`default upload through S1 ${name}`, () => form(UPLOADS, DEFAULT_UPLOAD_ID), () => ctx(`${UPLOADS}/$entity`), 'entity', () => DEFAULT_UPLOAD_ID]),
    ...KEY_FORMS.map(([name, form]): Row => [
      `contained deviceIdentities of upload ${name}`,
      () => contained(uploadA, form),
      () => ctx(`${UPLOADS}('${uploadA}')/deviceIdentities`),
      'collection',
      () => devicesOfA.map((d) => d.id).sort(),
    ]),
    ['contained deviceIdentities of an empty upload', () => contained(uploadB), () => ctx(`${UPLOADS}('${uploadB}')/deviceIdentities`), 'collection', () => []],
    ...KEY_FORM_PAIRS.map(([un, uf, dn, df]): Row => [
      `contained device, upload ${un}, device ${dn}`,
      () => df(contained(uploadA, uf), devicesOfA[0].id),
      () => ctx(`${UPLOADS}('${uploadA}')/deviceIdentities/$entity`),
      'entity',
      () => devicesOfA[0].id,
    ]),
    ['live collection', () => LIVE, () => ctx(LIVE), 'collection', () => [liveDevice.id]],
    ...KEY_FORMS.map(([name, form]): Row => [`live device ${name}`, () => form(LIVE, liveDevice.id), () => ctx(`${LIVE}/$entity`), 'entity', () => liveDevice.id]),
    ['S2 singleton', () => DEFAULT_UPLOAD, () => ctx(DEFAULT_UPLOAD), 'entity', () => DEFAULT_UPLOAD_ID],
    ['S2 deviceIdentities', () => `${DEFAULT_UPLOAD}/deviceIdentities`, () => ctx(`${DEFAULT_UPLOAD}/deviceIdentities`), 'collection', () => [defaultDevice.id]],
    ...KEY_FORMS.map(([name, form]): Row => [
      `S2 device ${name}`,
      () => form(`${DEFAULT_UPLOAD}/deviceIdentities`, defaultDevice.id),
      () => ctx(`${DEFAULT_UPLOAD}/deviceIdentities/$entity`),
      'entity',
      () => defaultDevice.id,
    ]),
    [
      'the default upload’s devices through S1',
      () => contained(DEFAULT_UPLOAD_ID),
      () => ctx(`${UPLOADS}('${DEFAULT_UPLOAD_ID}')/deviceIdentities`),
      'collection',
      () => [defaultDevice.id],
    ],
  ];

  it.each(rows)('GET %s', async (_name, path, context, kind, expected) => {
    // act
    const res = await service.get(path());

    // assert
    expect(res.status).toBe(200);
    expectProtocolHeaders(res);
    expect(res.headers.get('content-type')).toBe(JSON_TYPE);
    expect(Object.keys(res.body)[0]).toBe('@odata.context');
    expect(res.body['@odata.context']).toBe(context());
    if (kind === 'collection') {
      expect(Object.keys(res.body)).toEqual(['@odata.context', 'value']);
      expect(ids(res)).toEqual(expected());
      for (const entity of res.body.value) expect(entity['@odata.type']).toMatch(/^#microsoft\.graph\./);
    } else {
      expect(res.body.id).toBe(expected());
      expect(res.body['@odata.type']).toMatch(/^#microsoft\.graph\./);
      expect(res.headers.get('etag')).toBe(res.body['@odata.etag']);
    }
  });

  it('a device reads back exactly as created: @odata.type on entity and state, Binary as base64', async () => {
    const res = await service.get(`${LIVE}/${liveDevice.id}`);

    const { '@odata.context': _c, ...entity } = res.body;
    expect(entity).toEqual({ ...expectedDevice({ serialNumber: 'LIVE-1' }), id: liveDevice.id });
    expect(entity.hardwareIdentifier).toBe(HASH_64);
  });

  it('an upload reads back with createdDateTimeUtc in whole seconds and its status', async () => {
    const res = await service.get(`${UPLOADS}/${uploadB}`);

    expectUpload(res.body, uploadB);
    expect(res.body.status).toBe('noUpload');
  });

  it.each([
    ['uploads', () => UPLOADS, () => 3],
    ['contained deviceIdentities', () => contained(uploadA), () => 2],
    ['live', () => LIVE, () => 1],
    ['S2 deviceIdentities', () => `${DEFAULT_UPLOAD}/deviceIdentities`, () => 1],
  ])('GET %s/$count answers text/plain, also for Accept: text/plain and application/json', async (_name, path, expected) => {
    for (const accept of [undefined, 'text/plain', 'application/json']) {
      const res = await service.get(`${path()}/$count`, { headers: accept ? { Accept: accept } : {} });

      expect(res.status).toBe(200);
      expectProtocolHeaders(res);
      expect(res.headers.get('content-type')).toBe('text/plain');
      expect(res.text).toBe(String(expected()));
    }
  });
});

describe('the default upload (S2)', () => {
  it('is the singleton and a member of the uploads collection, with the same stable id', async () => {
    const singleton = await service.get(DEFAULT_UPLOAD);
    const list = await service.get(UPLOADS);

    expect(singleton.body.id).toBe(DEFAULT_UPLOAD_ID);
    const member = list.body.value.find((u: { id: string }) => u.id === DEFAULT_UPLOAD_ID);
    const { '@odata.context': _c, ...entity } = singleton.body;
    expect(member).toEqual(entity);
  });

  it('has the same id in another, fresh service (derived, not random)', async () => {
    const other = await startService();
    try {
      expect((await other.get(UPLOADS)).body.value.map((u: { id: string }) => u.id)).toEqual([DEFAULT_UPLOAD_ID]);
      expect((await other.get(DEFAULT_UPLOAD)).body.id).toBe(DEFAULT_UPLOAD_ID);
    } finally {
      await other.close();
    }
  });

  it('a device created through S2 is the same entity through S1', async () => {
    const viaS2 = await service.get(`${DEFAULT_UPLOAD}/deviceIdentities/${defaultDevice.id}`);
    const viaS1 = await service.get(`${contained(DEFAULT_UPLOAD_ID)}/${defaultDevice.id}`);

    const strip = ({ '@odata.context': _c, ...rest }: Record<string, unknown>) => rest;
    expect(strip(viaS1.body)).toEqual(strip(viaS2.body));
  });
});

describe('POST: create answers 201 with Location, ETag and the entity', () => {
  type Row = [string, () => string, () => string, () => string];
  const rows: Row[] = [
    ...KEY_FORMS.map(([name, form]): Row => [
      `contained deviceIdentities, upload ${name}`,
      () => contained(uploadB, form),
      () => `${root}/${UPLOADS}('${uploadB}')/deviceIdentities`,
      () => ctx(`${UPLOADS}('${uploadB}')/deviceIdentities/$entity`),
    ]),
    ['live', () => LIVE, () => `${root}/${LIVE}`, () => ctx(`${LIVE}/$entity`)],
    ['S2 deviceIdentities', () => `${DEFAULT_UPLOAD}/deviceIdentities`, () => `${root}/${DEFAULT_UPLOAD}/deviceIdentities`, () => ctx(`${DEFAULT_UPLOAD}/deviceIdentities/$entity`)],
  ];

  it.each(rows)('POST %s', async (_name, path, collectionUrl, context) => {
    // act
    const res = await service.request('POST', path(), { body: aDevice({ serialNumber: 'NEW-1', id: 'client-chosen' }) });

    // assert: the key is the server's, state is the server's, Location reads the entity back
    expect(res.status).toBe(201);
    expectProtocolHeaders(res);
    expect(res.headers.get('content-type')).toBe(JSON_TYPE);
    const { '@odata.context': actualContext, ...entity } = res.body;
    expect(actualContext).toBe(context());
    expect(entity).toEqual(expectedDevice({ serialNumber: 'NEW-1' }));
    expect(res.headers.get('location')).toBe(`${collectionUrl()}('${entity.id}')`);
    expect(res.headers.get('etag')).toBe(entity['@odata.etag']);
    const read = await service.get(res.headers.get('location')!);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(res.body);
  });

  it('POST uploads with {} creates an empty upload', async () => {
    const res = await service.request('POST', UPLOADS, { body: { '@odata.type': UPLOAD_TYPE } });

    expect(res.status).toBe(201);
    expectProtocolHeaders(res);
    expect(res.body['@odata.context']).toBe(ctx(`${UPLOADS}/$entity`));
    expectUpload(res.body, expect.stringMatching(GUID));
    expect(res.body.status).toBe('noUpload');
    expect(res.headers.get('location')).toBe(`${root}/${UPLOADS}('${res.body.id}')`);
    expect(res.headers.get('etag')).toBe(res.body['@odata.etag']);
    expect((await service.get(res.headers.get('location')!)).body).toEqual(res.body);
  });

  it('POST uploads deep-inserts deviceIdentities: the devices come back inline and live in the upload', async () => {
    // act
    const res = await service.request('POST', UPLOADS, {
      body: { deviceIdentities: [aDevice({ serialNumber: 'DEEP-1' }), aDevice({ serialNumber: 'DEEP-2', hardwareIdentifier: '-_8' })] },
    });

    // assert
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('pending');
    expect(res.body.deviceIdentities).toEqual([
      expectedDevice({ serialNumber: 'DEEP-1' }),
      expectedDevice({ serialNumber: 'DEEP-2', hardwareIdentifier: '+/8=' }),
    ]);
    const list = await service.get(contained(res.body.id));
    expect(ids(list)).toEqual(res.body.deviceIdentities.map((d: { id: string }) => d.id).sort());
    expect(list.body['@odata.context']).toBe(ctx(`${UPLOADS}('${res.body.id}')/deviceIdentities`));
  });

  it('POST with Prefer: return=minimal answers 204 with Location and OData-EntityId', async () => {
    const res = await service.request('POST', LIVE, { body: aDevice(), headers: { Prefer: 'return=minimal' } });

    expect(res.status).toBe(204);
    expectProtocolHeaders(res);
    expect(res.text).toBe('');
    expect(res.headers.get('location')).toMatch(new RegExp(`^${root.replace(/[.]/g, '\\.')}/${LIVE}\\('[0-9a-f-]{36}'\\)$`));
    expect(res.headers.get('odata-entityid')).toBe(res.headers.get('location'));
    expect(res.headers.get('preference-applied')).toBe('return=minimal');
  });
});

describe('PATCH and PUT on entities answer 200 with the entity', () => {
  type Row = [string, () => Promise<string>, () => string];
  const newDevice = async (collection: string) => (await service.request('POST', collection, { body: aDevice() })).body.id as string;
  const rows: Row[] = [
    ...KEY_FORM_PAIRS.map(([un, uf, dn, df]): Row => [
      `contained device, upload ${un}, device ${dn}`,
      async () => df(contained(uploadB, uf), await newDevice(contained(uploadB))),
      () => ctx(`${UPLOADS}('${uploadB}')/deviceIdentities/$entity`),
    ]),
    ...KEY_FORMS.map(([name, form]): Row => [`live device ${name}`, async () => form(LIVE, await newDevice(LIVE)), () => ctx(`${LIVE}/$entity`)]),
    ...KEY_FORMS.map(([name, form]): Row => [
      `S2 device ${name}`,
      async () => form(`${DEFAULT_UPLOAD}/deviceIdentities`, await newDevice(`${DEFAULT_UPLOAD}/deviceIdentities`)),
      () => ctx(`${DEFAULT_UPLOAD}/deviceIdentities/$entity`),
    ]),
  ];

  it.each(rows)('PATCH %s', async (_name, makePath, context) => {
    // arrange
    const path = await makePath();

    // act
    const res = await service.request('PATCH', path, { body: { groupTag: 'patched' } });

    // assert
    expect(res.status).toBe(200);
    expectProtocolHeaders(res);
    expect(res.body['@odata.context']).toBe(context());
    const { '@odata.context': _c, ...entity } = res.body;
    expect(entity).toEqual({ ...expectedDevice({ groupTag: 'patched' }), id: entity.id });
    expect(res.headers.get('etag')).toBe(entity['@odata.etag']);
    expect((await service.get(path)).body.groupTag).toBe('patched');
  });

  type UploadRow = [string, string, () => string, () => string, () => string];
  const uploadRows: UploadRow[] = [
    ...(['PATCH', 'PUT'] as const).flatMap((method) =>
      KEY_FORMS.map(([name, form]): UploadRow => [`${method} upload ${name}`, method, () => form(UPLOADS, uploadB), () => ctx(`${UPLOADS}/$entity`), () => uploadB]),
    ),
    ['PATCH S2 singleton', 'PATCH', () => DEFAULT_UPLOAD, () => ctx(DEFAULT_UPLOAD), () => DEFAULT_UPLOAD_ID],
  ];

  it.each(uploadRows)('%s (every property is server-set: a valid body changes nothing)', async (_name, method, path, context, id) => {
    const before = await service.get(path());

    const res = await service.request(method, path(), { body: { '@odata.type': UPLOAD_TYPE } });

    expect(res.status).toBe(200);
    expectProtocolHeaders(res);
    expect(res.body['@odata.context']).toBe(context());
    expectUpload(res.body, id());
    expect(res.body).toEqual(before.body);
  });
});

describe('PATCH on a device collection is an upsert (SPEC §3)', () => {
  const rows: [string, () => string][] = [
    ...KEY_FORMS.map(([name, form]): [string, () => string] => [`contained, upload ${name}`, () => contained(uploadB, form)]),
    ['live', () => LIVE],
    ['S2', () => `${DEFAULT_UPLOAD}/deviceIdentities`],
  ];

  it.each(rows)('%s: without id inserts, with id merges; both 200', async (_name, path) => {
    // act: insert
    const inserted = await service.request('PATCH', path(), { body: aDevice({ serialNumber: 'UPSERT-1' }) });

    // assert
    expect(inserted.status).toBe(200);
    expect(inserted.headers.get('location')).toBeNull();
    const { '@odata.context': _c, ...entity } = inserted.body;
    expect(entity).toEqual(expectedDevice({ serialNumber: 'UPSERT-1' }));

    // act: merge
    const merged = await service.request('PATCH', path(), { body: { id: entity.id, groupTag: 'merged' } });

    // assert
    expect(merged.status).toBe(200);
    expect(merged.body.id).toBe(entity.id);
    expect(merged.body.groupTag).toBe('merged');
    expect(merged.body.serialNumber).toBe('UPSERT-1');
  });
});

describe('DELETE answers 204 with no body', () => {
  const newDevice = async (collection: string) => (await service.request('POST', collection, { body: aDevice() })).body.id as string;
  const rows: [string, () => Promise<string>][] = [
    ...KEY_FORM_PAIRS.map(([un, uf, dn, df]): [string, () => Promise<string>] => [
      `contained device, upload ${un}, device ${dn}`,
      async () => df(contained(uploadB, uf), await newDevice(contained(uploadB))),
    ]),
    ...KEY_FORMS.map(([name, form]): [string, () => Promise<string>] => [`live device ${name}`, async () => form(LIVE, await newDevice(LIVE))]),
    ...KEY_FORMS.map(([name, form]): [string, () => Promise<string>] => [
      `S2 device ${name}`,
      async () => form(`${DEFAULT_UPLOAD}/deviceIdentities`, await newDevice(`${DEFAULT_UPLOAD}/deviceIdentities`)),
    ]),
    ...KEY_FORMS.map(([name, form]): [string, () => Promise<string>] => [
      `upload ${name}`,
      async () => form(UPLOADS, (await service.request('POST', UPLOADS, { body: {} })).body.id),
    ]),
  ];

  it.each(rows)('DELETE %s, then GET is 404', async (_name, makePath) => {
    const path = await makePath();

    const res = await service.request('DELETE', path);

    expect(res.status).toBe(204);
    expectProtocolHeaders(res);
    expect(res.text).toBe('');
    expect(res.headers.get('content-type')).toBeNull();
    const read = await service.get(path);
    expect(read.status).toBe(404);
    expect(read.body.error.code).toBe('ResourceNotFound');
  });

  it.each(KEY_FORMS)('deleting an upload (%s) deletes its devices', async (_name, form) => {
    // arrange
    const upload = await service.request('POST', UPLOADS, { body: { deviceIdentities: [aDevice(), aDevice()] } });
    const deviceIds: string[] = upload.body.deviceIdentities.map((d: { id: string }) => d.id);
    const rows = () => service.app.db.dataSource.getRepository(ImportedWindowsAutopilotDeviceIdentity).countBy({ uploadId: upload.body.id });
    expect(await rows()).toBe(2);

    // act
    const res = await service.request('DELETE', form(UPLOADS, upload.body.id));

    // assert: the devices are gone from the database, not just unreachable
    expect(res.status).toBe(204);
    expect(await rows()).toBe(0);
    for (const id of deviceIds) expect((await service.get(`${contained(upload.body.id)}/${id}`)).status).toBe(404);
    expect((await service.get(contained(upload.body.id))).status).toBe(404);
  });
});

describe('404: a missing key, or a device addressed under an upload it does not belong to', () => {
  const MISSING = '00000000-0000-4000-8000-000000000000';
  type Row = [string, string, () => string, unknown?];
  const rows: Row[] = [
    ...KEY_FORMS.flatMap(([name, form]): Row[] => [
      [`upload ${name}`, 'GET', () => form(UPLOADS, MISSING)],
      [`upload ${name}`, 'PATCH', () => form(UPLOADS, MISSING), {}],
      [`upload ${name}`, 'PUT', () => form(UPLOADS, MISSING), {}],
      [`upload ${name}`, 'DELETE', () => form(UPLOADS, MISSING)],
      [`deviceIdentities of a missing upload ${name}`, 'GET', () => contained(MISSING, form)],
      [`deviceIdentities of a missing upload ${name}`, 'POST', () => contained(MISSING, form), aDevice()],
      [`deviceIdentities of a missing upload ${name}`, 'PATCH', () => contained(MISSING, form), aDevice()],
      [`import into a missing upload ${name}`, 'POST', () => `${contained(MISSING, form)}/import`, { importedWindowsAutopilotDeviceIdentities: [aDevice()] }],
      [`autopilotDeviceStream of a missing upload ${name}`, 'GET', () => `${form(UPLOADS, MISSING)}/autopilotDeviceStream`],
      [`contained device ${name}`, 'GET', () => form(contained(uploadA), MISSING)],
      [`contained device ${name}`, 'PATCH', () => form(contained(uploadA), MISSING), { groupTag: 'x' }],
      [`contained device ${name}`, 'DELETE', () => form(contained(uploadA), MISSING)],
      [`live device ${name}`, 'GET', () => form(LIVE, MISSING)],
      [`live device ${name}`, 'PATCH', () => form(LIVE, MISSING), { groupTag: 'x' }],
      [`live device ${name}`, 'DELETE', () => form(LIVE, MISSING)],
      [`S2 device ${name}`, 'GET', () => form(`${DEFAULT_UPLOAD}/deviceIdentities`, MISSING)],
      [`S2 device ${name}`, 'PATCH', () => form(`${DEFAULT_UPLOAD}/deviceIdentities`, MISSING), { groupTag: 'x' }],
      [`S2 device ${name}`, 'DELETE', () => form(`${DEFAULT_UPLOAD}/deviceIdentities`, MISSING)],
    ]),
    ...KEY_FORM_PAIRS.flatMap(([un, uf, dn, df]): Row[] =>
      (['GET', 'PATCH', 'PUT', 'DELETE'] as const).map((method): Row => [
        `a device of upload A under upload B (upload ${un}, device ${dn})`,
        method,
        () => df(contained(uploadB, uf), devicesOfA[0].id),
        method === 'PATCH' || method === 'PUT' ? { groupTag: 'stolen' } : undefined,
      ]),
    ),
    ['a device of upload A under S2', 'GET', () => `${DEFAULT_UPLOAD}/deviceIdentities/${devicesOfA[0].id}`],
    ['a device of upload A under S2', 'DELETE', () => `${DEFAULT_UPLOAD}/deviceIdentities/${devicesOfA[0].id}`],
    ['a device of S2 under upload A', 'GET', () => `${contained(uploadA)}/${defaultDevice.id}`],
    ['a device of S2 under upload A', 'DELETE', () => `${contained(uploadA)}/${defaultDevice.id}`],
    ['a device of upload A in the live collection', 'GET', () => `${LIVE}/${devicesOfA[0].id}`],
    ['a device of upload A in the live collection', 'PATCH', () => `${LIVE}/${devicesOfA[0].id}`, { groupTag: 'stolen' }],
    ['a device of upload A in the live collection', 'DELETE', () => `${LIVE}/${devicesOfA[0].id}`],
    ['a live device under upload A', 'GET', () => `${contained(uploadA)}/${liveDevice.id}`],
    ['a live device under upload A', 'DELETE', () => `${contained(uploadA)}/${liveDevice.id}`],
    ['a collection upsert with the id of another upload’s device', 'PATCH', () => contained(uploadB), () => ({ id: devicesOfA[0].id, groupTag: 'stolen' })],
    ['an unknown segment under the root', 'GET', () => 'nosuch'],
    ['an unknown segment under deviceManagement', 'GET', () => 'deviceManagement/nosuch'],
    ['an unknown segment under an upload', 'GET', () => `${UPLOADS}/${uploadA}/nosuch`],
    ['an unknown segment under a device', 'GET', () => `${contained(uploadA)}/${devicesOfA[0].id}/nosuch`],
    ['an unknown segment under the live collection', 'GET', () => `${LIVE}/${liveDevice.id}/state`],
    ['a path outside the service root', 'GET', () => '/v1.0/deviceManagement'],
  ];

  // Every row gets its 4th element (jest would otherwise pass a `done` callback in its place).
  it.each(rows.map(([name, method, path, body]): Row => [name, method, path, body]))('%s: %s → 404 ResourceNotFound, nothing changed', async (_name, method, path, body) => {
    // arrange
    const before = await service.get(`${contained(uploadA)}/${devicesOfA[0].id}`);

    // act
    const payload = typeof body === 'function' ? body() : body;
    const res = await service.request(method, path(), payload === undefined ? {} : { body: payload });

    // assert
    expect(res.status).toBe(404);
    expectProtocolHeaders(res);
    expect(res.body.error.code).toBe('ResourceNotFound');
    expect(res.body.error.message).toEqual(expect.any(String));
    const after = await service.get(`${contained(uploadA)}/${devicesOfA[0].id}`);
    expect(after.body).toEqual(before.body);
  });
});

describe('405 names the allowed methods in Allow', () => {
  type Row = [string, () => string, string];
  const rows: Row[] = [
    ['POST', () => '', 'GET'],
    ['DELETE', () => '', 'GET'],
    ['PUT', () => '$metadata', 'GET'],
    ['POST', () => 'deviceManagement', 'GET'],
    ['PATCH', () => 'deviceManagement', 'GET'],
    ['PUT', () => UPLOADS, 'GET, POST'],
    ['PATCH', () => UPLOADS, 'GET, POST'],
    ['DELETE', () => UPLOADS, 'GET, POST'],
    ['POST', () => `${UPLOADS}/$count`, 'GET'],
    ...KEY_FORMS.flatMap(([, form]): Row[] => [
      ['POST', () => form(UPLOADS, uploadA), 'GET, PATCH, PUT, DELETE'],
      ['DELETE', () => form(UPLOADS, DEFAULT_UPLOAD_ID), 'GET, PATCH, PUT'],
      ['PUT', () => contained(uploadA, form), 'GET, POST, PATCH'],
      ['DELETE', () => contained(uploadA, form), 'GET, POST, PATCH'],
      ['POST', () => form(contained(uploadA), devicesOfA[0].id), 'GET, PATCH, PUT, DELETE'],
      ['POST', () => form(LIVE, liveDevice.id), 'GET, PATCH, PUT, DELETE'],
      ['GET', () => `${contained(uploadA, form)}/import`, 'POST'],
      ['POST', () => `${form(UPLOADS, uploadA)}/autopilotDeviceStream`, 'GET'],
      ['POST', () => `${form(UPLOADS, uploadA)}/autopilotDeviceStream()`, 'GET'],
    ]),
    ['PUT', () => LIVE, 'GET, POST, PATCH'],
    ['DELETE', () => LIVE, 'GET, POST, PATCH'],
    ['GET', () => `${LIVE}/import`, 'POST'],
    ['DELETE', () => `${LIVE}/$count`, 'GET'],
    ['DELETE', () => DEFAULT_UPLOAD, 'GET, PATCH, PUT'],
    ['POST', () => DEFAULT_UPLOAD, 'GET, PATCH, PUT'],
    ['PUT', () => `${DEFAULT_UPLOAD}/deviceIdentities`, 'GET, POST, PATCH'],
    ['DELETE', () => `${DEFAULT_UPLOAD}/deviceIdentities`, 'GET, POST, PATCH'],
    ['POST', () => `${DEFAULT_UPLOAD}/deviceIdentities/${defaultDevice.id}`, 'GET, PATCH, PUT, DELETE'],
  ];

  it.each(rows)('%s %s → 405, Allow: %s', async (method, path, allow) => {
    const res = await service.request(method, path(), method === 'GET' ? {} : { body: {} });

    expect(res.status).toBe(405);
    expectProtocolHeaders(res);
    // HEAD is allowed wherever GET is
    expect(res.headers.get('allow')).toBe(allow.includes('GET') ? `${allow}, HEAD` : allow);
    expect(res.body.error.code).toBe('MethodNotAllowed');
  });

  it('answers HEAD like GET, without a body', async () => {
    const get = await service.get(`${LIVE}/${liveDevice.id}`);
    const head = await service.request('HEAD', `${LIVE}/${liveDevice.id}`);
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers.get('etag')).toBe(get.headers.get('etag'));
    expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
  });

  it('the default upload survives DELETE', async () => {
    await service.request('DELETE', `${UPLOADS}/${DEFAULT_UPLOAD_ID}`);
    await service.request('DELETE', DEFAULT_UPLOAD);

    expect((await service.get(`${UPLOADS}/${DEFAULT_UPLOAD_ID}`)).status).toBe(200);
    expect((await service.get(`${DEFAULT_UPLOAD}/deviceIdentities/${defaultDevice.id}`)).status).toBe(200);
  });
});

describe('autopilotDeviceStream returns the upload’s devices as the Autopilot CSV', () => {
  const SPELLINGS = ['autopilotDeviceStream', 'autopilotDeviceStream()', 'microsoft.graph.autopilotDeviceStream()'];
  const HEADER = 'Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User';
  const rows: [string, string, () => string][] = [
    ...KEY_FORMS.flatMap(([name, form]) => SPELLINGS.map((spelling): [string, string, () => string] => [name, spelling, () => `${form(UPLOADS, uploadA)}/${spelling}`])),
  ];

  it.each(rows)('upload %s /%s', async (_form, _spelling, path) => {
    const res = await service.get(path());

    expect(res.status).toBe(200);
    expectProtocolHeaders(res);
    expect(res.headers.get('content-type')).toBe(JSON_TYPE);
    expect(Object.keys(res.body)).toEqual(['@odata.context', 'value']);
    expect(res.body['@odata.context']).toBe(ctx('Edm.String'));
    const lines: string[] = res.body.value.split('\r\n');
    expect(lines[0]).toBe(HEADER);
    expect(lines[lines.length - 1]).toBe('');
    expect(lines.slice(1, -1).sort()).toEqual([
      `A-1,PK-0001,${HASH_64},lab,user@contoso.com`,
      `A-2,PK-0001,${HASH_64},"tag, with ""comma""",user@contoso.com`,
    ]);
  });

  it('of an empty upload is the header line only', async () => {
    const empty = (await service.request('POST', UPLOADS, { body: {} })).body.id;

    const res = await service.get(`${UPLOADS}/${empty}/autopilotDeviceStream()`);

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ '@odata.context': ctx('Edm.String'), value: `${HEADER}\r\n` });
  });

  it.each(SPELLINGS)('of the S2 singleton: /%s', async (spelling) => {
    const res = await service.get(`${DEFAULT_UPLOAD}/${spelling}`);

    expect(res.status).toBe(200);
    expect(res.body['@odata.context']).toBe(ctx('Edm.String'));
    const lines: string[] = res.body.value.split('\r\n');
    expect(lines[0]).toBe(HEADER);
    expect(lines).toContain(`S2-1,PK-0001,${HASH_64},lab,user@contoso.com`);
  });
});

describe('the import action answers 200 with a collection of the created devices', () => {
  const rows: [string, () => string, () => string][] = [
    ['live', () => `${LIVE}/import`, () => LIVE],
    ['live, namespace-qualified', () => `${LIVE}/microsoft.graph.import`, () => LIVE],
    ...KEY_FORMS.map(([name, form]): [string, () => string, () => string] => [`contained, upload ${name}`, () => `${contained(uploadB, form)}/import`, () => contained(uploadB)]),
    ['S2', () => `${DEFAULT_UPLOAD}/deviceIdentities/import`, () => `${DEFAULT_UPLOAD}/deviceIdentities`],
  ];

  it.each(rows)('POST %s', async (_name, path, collection) => {
    // act
    const res = await service.request('POST', path(), {
      body: { importedWindowsAutopilotDeviceIdentities: [aDevice({ serialNumber: 'IMP-1', id: 'ignored' }), aDevice({ serialNumber: 'IMP-2' })] },
    });

    // assert
    expect(res.status).toBe(200);
    expectProtocolHeaders(res);
    expect(res.headers.get('content-type')).toBe(JSON_TYPE);
    expect(res.headers.get('location')).toBeNull();
    expect(res.body).toEqual({
      '@odata.context': ctx('Collection(microsoft.graph.importedWindowsAutopilotDeviceIdentity)'),
      value: [expectedDevice({ serialNumber: 'IMP-1' }), expectedDevice({ serialNumber: 'IMP-2' })],
    });
    for (const device of res.body.value) expect((await service.get(`${collection()}/${device.id}`)).status).toBe(200);
  });

  it('POST …/deviceIdentities/import accepts the Autopilot CSV as text/csv (SPEC §4)', async () => {
    // arrange
    const csv = `Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\nCSV-1,PK-9,${HASH_64},lab,user@contoso.com\r\n`;

    // act
    const res = await service.request('POST', `${contained(uploadB)}/import`, { body: csv, headers: { 'Content-Type': 'text/csv' } });

    // assert
    expect(res.status).toBe(200);
    expect(res.body.value).toEqual([
      { ...expectedDevice({ serialNumber: 'CSV-1', productKey: 'PK-9', importId: null }), id: expect.stringMatching(GUID) },
    ]);
  });
});

describe('path segment names match case-insensitively, as on Graph; contexts stay canonical', () => {
  it.each([
    ['DeviceManagement/ImportedWindowsAutopilotDeviceIdentities', () => 'DeviceManagement/ImportedWindowsAutopilotDeviceIdentities', () => ctx(LIVE)],
    ['DEVICEMANAGEMENT/importedwindowsautopilotdeviceidentityuploads', () => 'DEVICEMANAGEMENT/importedwindowsautopilotdeviceidentityuploads', () => ctx(UPLOADS)],
    [
      '…Uploads/{id}/DeviceIdentities',
      () => `deviceManagement/ImportedWindowsAutopilotDeviceIdentityUploads/${uploadA}/DeviceIdentities`,
      () => ctx(`${UPLOADS}('${uploadA}')/deviceIdentities`),
    ],
    ['ImportedWindowsAutopilotDeviceIdentityUpload/DeviceIdentities', () => 'ImportedWindowsAutopilotDeviceIdentityUpload/DeviceIdentities', () => ctx(`${DEFAULT_UPLOAD}/deviceIdentities`)],
    ['…/Microsoft.Graph.AutopilotDeviceStream()', () => `${UPLOADS}/${uploadA}/Microsoft.Graph.AutopilotDeviceStream()`, () => ctx('Edm.String')],
  ])('GET %s', async (_name, path, context) => {
    const res = await service.get(path());

    expect(res.status).toBe(200);
    expect(res.body['@odata.context']).toBe(context());
  });

  it.each([
    ['$COUNT', () => `${LIVE}/$Count`, 'text/plain'],
    ['$METADATA', () => '$Metadata', 'application/xml'],
  ])('GET …/%s', async (_name, path, contentType) => {
    const res = await service.get(path());

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(contentType);
  });
});
