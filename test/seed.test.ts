import { DEFAULT_UPLOAD, GUID, startService, TestService } from './support/service';

/** The page this project started from: its example request must work exactly as shown (reference/seed-update-deviceidentities.md). */
const SEED_REQUEST = {
  '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentity',
  orderIdentifier: 'String',
  groupTag: 'String',
  serialNumber: 'String',
  productKey: 'String',
  importId: 'String',
  hardwareIdentifier: 'Binary',
  state: {
    '@odata.type': 'microsoft.graph.importedWindowsAutopilotDeviceIdentityState',
  },
  assignedUserPrincipalName: 'String',
};

describe('seed: PATCH /importedWindowsAutopilotDeviceIdentityUpload/deviceIdentities', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(() => service.close());

  it('answers 200 with the shape shown in the seed', async () => {
    // act
    const res = await service.request('PATCH', `${DEFAULT_UPLOAD}/deviceIdentities`, { body: SEED_REQUEST });

    // assert: every property of the seed's response, a server GUID id, @odata.type on the entity and on state
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json;odata.metadata=minimal');
    expect(res.headers.get('odata-version')).toBe('4.0');
    expect(res.headers.get('etag')).toBe(res.body['@odata.etag']);
    const { '@odata.context': context, '@odata.etag': etag, ...entity } = res.body;
    expect(context).toBe(`${service.root}/$metadata#importedWindowsAutopilotDeviceIdentityUpload/deviceIdentities/$entity`);
    expect(etag).toMatch(/^W\/".+"$/);
    expect(entity.id).toMatch(GUID);
    expect(Buffer.from(entity.hardwareIdentifier, 'base64')).toEqual(Buffer.from('Binary', 'base64'));
    expect(Object.keys(entity)).toEqual([
      '@odata.type', 'id', 'orderIdentifier', 'groupTag', 'serialNumber', 'productKey', 'importId', 'hardwareIdentifier', 'state', 'assignedUserPrincipalName',
    ]);
    expect(entity).toEqual({
      '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentity',
      id: entity.id,
      orderIdentifier: 'String',
      groupTag: 'String',
      serialNumber: 'String',
      productKey: 'String',
      importId: 'String',
      hardwareIdentifier: entity.hardwareIdentifier,
      state: {
        '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentityState',
        deviceImportStatus: 'unknown',
        deviceRegistrationId: null,
        deviceErrorCode: 0,
        deviceErrorName: null,
      },
      assignedUserPrincipalName: 'String',
    });

    // and the device is stored: it reads back the same
    const read = await service.get(`${DEFAULT_UPLOAD}/deviceIdentities/${entity.id}`);
    expect(read.status).toBe(200);
    expect(read.body.groupTag).toBe('String');
  });
});
