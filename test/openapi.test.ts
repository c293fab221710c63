import SwaggerParser from '@apidevtools/swagger-parser';
import { DEFAULT_UPLOAD, LIVE, startService, TestService, UPLOADS } from './support/service';

/** GET /beta/$openapi: the OpenAPI 3 document odata-openapi generates from the served CSDL. */
describe('GET /beta/$openapi', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(() => service.close());

  it('is a valid OpenAPI 3.0 document, served without a token', async () => {
    // act
    const res = await service.get('$openapi', { anonymous: true });
    const data = await service.get(LIVE, { anonymous: true });

    // assert: swagger-parser checks it against the OpenAPI 3.0 schema and resolves every $ref
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.body.openapi).toMatch(/^3\.0\.\d+$/);
    await expect(SwaggerParser.validate(structuredClone(res.body))).resolves.toBeDefined();
    expect(data.status).toBe(401);
  });

  it('has paths for the singletons, the live devices and the contained deviceIdentities of uploads', async () => {
    const { body } = await service.get('$openapi', { anonymous: true });
    expect(Object.keys(body.paths)).toEqual(
      expect.arrayContaining([
        '/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads',
        '/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/{id_1}',
        '/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/{id_1}/deviceIdentities',
        '/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/{id_1}/deviceIdentities/{id_2}',
        '/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/{id_1}/deviceIdentities/import',
        '/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/{id_1}/autopilotDeviceStream()',
        '/deviceManagement/importedWindowsAutopilotDeviceIdentities',
        '/deviceManagement/importedWindowsAutopilotDeviceIdentities/{id_1}',
        '/deviceManagement/importedWindowsAutopilotDeviceIdentities/import',
        '/importedWindowsAutopilotDeviceIdentityUpload',
        '/importedWindowsAutopilotDeviceIdentityUpload/deviceIdentities',
        '/importedWindowsAutopilotDeviceIdentityUpload/deviceIdentities/{id_1}',
      ]),
    );
    expect(Object.keys(body.paths['/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/{id_1}/deviceIdentities/{id_2}'])).toEqual(
      expect.arrayContaining(['get', 'patch', 'delete']),
    );
    // The model is the served CSDL's: every property of the device, enum members verbatim.
    const device = body.components.schemas['microsoft.graph.importedWindowsAutopilotDeviceIdentity'];
    expect(Object.keys(device.allOf?.[1]?.properties ?? device.properties ?? {})).toEqual(
      expect.arrayContaining(['orderIdentifier', 'groupTag', 'serialNumber', 'productKey', 'importId', 'hardwareIdentifier', 'state', 'assignedUserPrincipalName']),
    );
    expect(body.components.schemas['microsoft.graph.importedWindowsAutopilotDeviceIdentityImportStatus'].enum).toEqual([
      'unknown',
      'pending',
      'partial',
      'complete',
      'error',
    ]);
  });

  it('declares a bearer token for every operation', async () => {
    const { body } = await service.get('$openapi', { anonymous: true });
    expect(body.components.securitySchemes).toEqual({ bearer: expect.objectContaining({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }) });
    expect(body.security).toEqual([{ bearer: [] }]);
  });

  it('names the service root the client reached as its server', async () => {
    // act: as 127.0.0.1, and as localhost (a Host header of its own)
    const direct = await service.get('$openapi', { anonymous: true });
    const port = new URL(service.origin).port;
    const viaLocalhost = (await fetch(`http://localhost:${port}/beta/$openapi`).then((r) => r.json())) as { servers: unknown };

    // assert
    expect(direct.body.servers).toEqual([{ url: service.root }]);
    expect(viaLocalhost.servers).toEqual([{ url: `http://localhost:${port}/beta` }]);
  });

  it('answers HEAD, and refuses other methods in Graph error format', async () => {
    const head = await service.request('HEAD', '$openapi', { anonymous: true });
    const post = await service.request('POST', '$openapi', { anonymous: true, body: {} });
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(post.body.error).toMatchObject({ code: 'MethodNotAllowed', innerError: { 'request-id': post.headers.get('request-id') } });
  });

  const REGISTERED = 'deviceManagement/windowsAutopilotDeviceIdentities';

  it('describes only operations the service routes', async () => {
    // arrange: one upload with a device, a live device, a device in the default upload
    const upload = await service.request('POST', UPLOADS, { body: { deviceIdentities: [{ serialNumber: 'OA-UP-1' }] } });
    const uploadDevice = (await service.get(`${UPLOADS}/${upload.body.id}/deviceIdentities`)).body.value[0].id;
    const live = (await service.request('POST', LIVE, { body: { serialNumber: 'OA-LIVE-1' } })).body.id;
    const defaultDevice = (await service.request('POST', `${DEFAULT_UPLOAD}/deviceIdentities`, { body: { serialNumber: 'OA-DEF-1' } })).body.id;
    const registered = (await service.request('POST', REGISTERED, { body: { serialNumber: 'OA-REG-1' } })).body.id;
    // The key each path parameter stands for, by the named segments before it.
    const keyFor: Record<string, string> = {
      [UPLOADS]: upload.body.id,
      [`${UPLOADS}/deviceIdentities`]: uploadDevice,
      [LIVE]: live,
      [`${DEFAULT_UPLOAD}/deviceIdentities`]: defaultDevice,
      [REGISTERED]: registered,
    };
    const concrete = (path: string) => {
      const parts = path.split('/').filter(Boolean);
      return parts
        .map((part, i) => {
          if (!part.startsWith('{')) return part;
          const named = parts.slice(0, i).filter((p) => !p.startsWith('{')).join('/');
          if (!keyFor[named]) throw new Error(`no key for ${part} in ${path}`);
          return keyFor[named];
        })
        .join('/');
    };
    const { body } = await service.get('$openapi', { anonymous: true });
    const operations = Object.entries<Record<string, unknown>>(body.paths)
      .flatMap(([path, item]) => Object.keys(item).filter((m) => m !== 'parameters').map((method) => ({ method: method.toUpperCase(), path })))
      // Deletes last, deepest first, so every other request still finds its entity.
      .sort((a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE') || (a.method === 'DELETE' ? b.path.length - a.path.length : 0));

    // act
    const answers: string[] = [];
    for (const { method, path } of operations) {
      const url = concrete(path);
      const res = await service.request(method, url, method === 'POST' || method === 'PATCH' ? { body: {} } : {});
      answers.push(`${method} ${path} ${res.status} ${res.body?.error?.code ?? ''}`.trim());
    }

    // assert: nothing is missing (404), refused as a method (405) or failing (5xx); bad bodies may answer 400
    expect(operations.length).toBeGreaterThanOrEqual(25);
    expect(answers.filter((a) => / (404|405|5\d\d)/.test(a))).toEqual([]);
  });
});
