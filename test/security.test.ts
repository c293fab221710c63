import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { aDevice } from './fixtures/devices';
import { DEFAULT_UPLOAD, LIVE, startService, TestService, token, UPLOADS } from './support/service';
import { loadConfig } from '../src/config';
import { setupAuth } from '../src/auth';

/** Bearer tokens, permissions, tenant isolation and throttling, as Graph does them (SPEC §4 Security). */
const sign = (claims: Record<string, unknown>, secret = 'test-secret-0123456789abcdef', exp: string | number = '1h') =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(secret));

const expectGraphError = (res: { status: number; body: any; headers: Headers }, status: number, code: string) => {
  expect(res.status).toBe(status);
  expect(res.body.error.code).toBe(code);
  expect(res.body.error.message).toEqual(expect.any(String));
  expect(res.body.error.innerError).toEqual({ date: expect.any(String), 'request-id': res.headers.get('request-id'), 'client-request-id': expect.any(String) });
  expect(res.headers.get('odata-version')).toBe('4.0');
};

describe('authentication', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(() => service.close());

  it.each([
    ['no Authorization header', () => Promise.resolve(undefined)],
    ['a Basic credential', () => Promise.resolve('Basic dXNlcjpwYXNz')],
    ['a malformed token', () => Promise.resolve('Bearer not-a-jwt')],
    ['a token signed with another secret', async () => `Bearer ${await sign({ tid: 'default', scp: 'DeviceManagementServiceConfig.ReadWrite.All' }, 'another-secret-0123456789')}`],
    ['an expired token', async () => `Bearer ${await sign({ tid: 'default', scp: 'DeviceManagementServiceConfig.ReadWrite.All' }, undefined, Math.floor(Date.now() / 1000) - 60)}`],
    ['a token without tid', async () => `Bearer ${await sign({ scp: 'DeviceManagementServiceConfig.ReadWrite.All' })}`],
    ['an unsigned (alg none) token', () => Promise.resolve(`Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"tid":"default"}').toString('base64url')}.`)],
  ])('answers 401 InvalidAuthenticationToken with WWW-Authenticate for %s', async (_what, authorization) => {
    const value = await authorization();
    const res = await service.get(LIVE, value ? { headers: { Authorization: value } } : { anonymous: true });
    expectGraphError(res, 401, 'InvalidAuthenticationToken');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="graph"/);
  });

  it.each([['$metadata'], [''], ['/health']])('serves %s without a token', async (path) => {
    const res = await service.get(path, { anonymous: true });
    expect(res.status).toBe(200);
  });

  it.each([
    ['POST', LIVE, aDevice()],
    ['PATCH', `${DEFAULT_UPLOAD}/deviceIdentities`, aDevice()],
    ['POST', `${LIVE}/import`, { importedWindowsAutopilotDeviceIdentities: [aDevice()] }],
    ['POST', UPLOADS, {}],
    ['DELETE', `${LIVE}/00000000-0000-0000-0000-000000000000`, undefined],
  ])('refuses %s %s with a read-only token: 403 Authorization_RequestDenied', async (method, path, body) => {
    const res = await service.request(method, path, { body, headers: { Authorization: `Bearer ${await token('default', 'read')}` } });
    expectGraphError(res, 403, 'Authorization_RequestDenied');
  });

  it.each([
    ['a delegated read scope', () => token('default', 'read')],
    ['a delegated read-write scope', () => token('default', 'write')],
    ['application read roles', () => token('default', 'read', true)],
    ['application read-write roles', () => token('default', 'write', true)],
  ])('lets %s read', async (_what, tokenOf) => {
    const res = await service.get(LIVE, { headers: { Authorization: `Bearer ${await tokenOf()}` } });
    expect(res.status).toBe(200);
  });

  it('lets application roles write', async () => {
    const res = await service.request('POST', LIVE, { body: aDevice(), headers: { Authorization: `Bearer ${await token('default', 'write', true)}` } });
    expect(res.status).toBe(201);
  });

  it('refuses a token without any of the permissions, also for reads', async () => {
    const res = await service.get(LIVE, { headers: { Authorization: `Bearer ${await sign({ tid: 'default', scp: 'User.Read' })}` } });
    expectGraphError(res, 403, 'Authorization_RequestDenied');
  });
});

describe('tenant isolation', () => {
  let service: TestService;
  let other: { headers: Record<string, string> };
  let upload: any;
  let contained: any;
  let live: any;
  let seeded: any;

  beforeAll(async () => {
    service = await startService();
    other = { headers: { Authorization: `Bearer ${await token('tenant-b', 'write')}` } };
    upload = (await service.request('POST', UPLOADS, { body: { deviceIdentities: [aDevice({ serialNumber: 'A-1' })] } })).body;
    contained = upload.deviceIdentities[0];
    live = (await service.request('POST', LIVE, { body: aDevice({ serialNumber: 'A-LIVE' }) })).body;
    seeded = (await service.request('PATCH', `${DEFAULT_UPLOAD}/deviceIdentities`, { body: aDevice({ serialNumber: 'A-S2' }) })).body;
  });
  afterAll(() => service.close());

  const routes = () => [
    ['GET', `${UPLOADS}/${upload.id}`, undefined],
    ['GET', `${UPLOADS}('${upload.id}')/deviceIdentities`, undefined],
    ['GET', `${UPLOADS}/${upload.id}/deviceIdentities/${contained.id}`, undefined],
    ['GET', `${UPLOADS}/${upload.id}/deviceIdentities/$count`, undefined],
    ['GET', `${UPLOADS}/${upload.id}/autopilotDeviceStream()`, undefined],
    ['GET', `${LIVE}/${live.id}`, undefined],
    ['PATCH', `${UPLOADS}/${upload.id}`, {}],
    ['PUT', `${UPLOADS}/${upload.id}`, {}],
    ['DELETE', `${UPLOADS}/${upload.id}`, undefined],
    ['POST', `${UPLOADS}/${upload.id}/deviceIdentities`, aDevice()],
    ['PATCH', `${UPLOADS}/${upload.id}/deviceIdentities`, aDevice()],
    ['POST', `${UPLOADS}/${upload.id}/deviceIdentities/import`, { importedWindowsAutopilotDeviceIdentities: [aDevice()] }],
    ['PATCH', `${UPLOADS}/${upload.id}/deviceIdentities/${contained.id}`, { groupTag: 'stolen' }],
    ['DELETE', `${UPLOADS}/${upload.id}/deviceIdentities/${contained.id}`, undefined],
    ['PATCH', `${LIVE}/${live.id}`, { groupTag: 'stolen' }],
    ['PUT', `${LIVE}/${live.id}`, { groupTag: 'stolen' }],
    ['DELETE', `${LIVE}/${live.id}`, undefined],
    ['PATCH', LIVE, { id: live.id, groupTag: 'stolen' }],
    ['PATCH', `${DEFAULT_UPLOAD}/deviceIdentities/${seeded.id}`, { groupTag: 'stolen' }],
    ['PATCH', `${DEFAULT_UPLOAD}/deviceIdentities`, { '@context': '#$delta', value: [{ '@removed': {}, id: seeded.id }] }],
  ];

  it('answers 404 to another tenant on every route, and changes nothing', async () => {
    for (const [method, path, body] of routes()) {
      const res = await service.request(method as string, path as string, { body, ...other });
      expect([method, path, res.status]).toEqual([method, path, 404]);
      expect(res.body.error.code).toBe('ResourceNotFound');
    }
    expect((await service.get(`${UPLOADS}/${upload.id}/deviceIdentities/${contained.id}`)).body.groupTag).toBe('lab');
    expect((await service.get(`${LIVE}/${live.id}`)).body.groupTag).toBe('lab');
    expect((await service.get(`${DEFAULT_UPLOAD}/deviceIdentities/${seeded.id}`)).status).toBe(200);
  });

  it('shows another tenant only its own, empty collections', async () => {
    expect((await service.get(LIVE, other)).body.value).toEqual([]);
    expect((await service.get(`${LIVE}/$count`, other)).text).toBe('0');
    expect((await service.get(`${DEFAULT_UPLOAD}/deviceIdentities`, other)).body.value).toEqual([]);
    const uploads = (await service.get(UPLOADS, other)).body.value;
    const ownDefault = (await service.get(DEFAULT_UPLOAD, other)).body;
    expect(uploads.map((u: any) => u.id)).toEqual([ownDefault.id]);
    expect(ownDefault.id).not.toBe((await service.get(DEFAULT_UPLOAD)).body.id);
  });
});

describe('throttling', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startService({ THROTTLE_WRITES: '3/2', THROTTLE_READS: '1000/1' });
  });
  afterAll(() => service.close());

  it('answers 429 with Retry-After over the per-tenant write limit, and recovers after it', async () => {
    // arrange: use up the bucket
    for (let i = 0; i < 3; i++) expect((await service.request('POST', LIVE, { body: aDevice() })).status).toBe(201);

    // act
    const throttled = await service.request('POST', LIVE, { body: aDevice({ serialNumber: 'THROTTLED' }) });

    // assert
    expectGraphError(throttled, 429, 'TooManyRequests');
    const retryAfter = Number(throttled.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
    expect((await service.get(LIVE)).status).toBe(200);
    const otherTenant = await service.request('POST', LIVE, { body: aDevice(), headers: { Authorization: `Bearer ${await token('tenant-c')}` } });
    expect(otherTenant.status).toBe(201);
    expect((await service.get(`${LIVE}?$filter=serialNumber eq 'THROTTLED'`)).body.value).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
    expect((await service.request('POST', LIVE, { body: aDevice() })).status).toBe(201);
  });
});

describe('token sources', () => {
  it('verifies RS256 tokens against a JWKS file, and refuses HS256 ones there', async () => {
    // arrange
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const file = join(mkdtempSync(join(tmpdir(), 'jwks-')), 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [jwk] }));
    const service = await startService({ AUTH_JWKS: file, AUTH_AUDIENCE: 'api://autopilot' });
    const rs = (aud: string) =>
      new SignJWT({ tid: 'default', roles: ['DeviceManagementServiceConfig.Read.All'] })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setAudience(aud)
        .setExpirationTime('1h')
        .sign(privateKey);
    try {
      // act / assert
      expect((await service.get(LIVE, { headers: { Authorization: `Bearer ${await rs('api://autopilot')}` } })).status).toBe(200);
      expect((await service.get(LIVE, { headers: { Authorization: `Bearer ${await rs('api://other')}` } })).status).toBe(401);
      expect((await service.get(LIVE)).status).toBe(401);
    } finally {
      await service.close();
    }
  });

  it('generates a local secret with mode 0600 when none is configured, and reuses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'secret-'));
    const config = loadConfig({ DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}` });
    expect(config.auth.mode).toBe('local');
    const first = (await setupAuth(config)).secret;
    expect(statSync(join(dir, 'auth-secret')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'auth-secret'), 'utf8').trim()).toBe(first);
    expect((await setupAuth(config)).secret).toBe(first);
  });
});
