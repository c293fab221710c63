import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSelfSignedCertificate } from '../src/http/tls';
import { GUID, startService, TestService, token } from './support/service';

/**
 * The Microsoft Graph JS client 3.0.7, the most used Graph client, over https (over http it sends no token: its
 * custom hosts match https URLs only). It runs in a child process that trusts the service's self-signed certificate
 * through NODE_EXTRA_CA_CERTS, as `npm start` tells a user to.
 */
describe('@microsoft/microsoft-graph-client 3.0.7', () => {
  let service: TestService;
  let certFile: string;
  const seen: { method: string; url: string; authorization?: string; clientRequestId?: string; sdkVersion?: string }[] = [];
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'graph-js-'));
    const tls = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), selfSigned: true };
    await ensureSelfSignedCertificate(tls);
    certFile = tls.certFile;
    service = await startService({ TLS_CERT: tls.certFile, TLS_KEY: tls.keyFile });
    service.app.server.on('request', (req) =>
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        clientRequestId: req.headers['client-request-id'] as string | undefined,
        sdkVersion: req.headers.sdkversion as string | undefined,
      }),
    );
  });
  afterAll(() => service.close());

  it('creates, gets, patches and lists devices, sending the token and a client-request-id', async () => {
    // arrange
    const bearer = await token();

    // act
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['-r', 'ts-node/register/transpile-only', join(__dirname, 'support', 'graph-client.child.ts')],
        { env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: certFile, GRAPH_BASE_URL: `${service.origin}/`, TOKEN: bearer } },
        (_err, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
      );
    });
    const out = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}');

    // assert: what the client got
    expect([run.code, out.failed, run.stderr]).toEqual([0, undefined, '']);
    expect(out.created).toEqual({
      id: expect.stringMatching(GUID),
      serialNumber: 'GRAPH-JS-1',
      hardwareIdentifier: Buffer.alloc(96, 7).toString('base64'),
      context: `${service.root}/$metadata#deviceManagement/importedWindowsAutopilotDeviceIdentities/$entity`,
    });
    expect(out.got).toEqual({ id: out.created.id, groupTag: 'js' });
    expect(out.patched).toEqual({ groupTag: 'js-patched' });
    expect(out.firstPage.count).toBe(1);
    expect(out.firstPage.nextLink).toMatch(new RegExp(`^${service.root.replace(/\./g, '\\.')}/deviceManagement/`));
    expect(out.listed).toEqual(['GRAPH-JS-1', 'GRAPH-JS-2']);
    expect(out.notFound).toEqual({ statusCode: 404, code: 'ResourceNotFound', requestId: expect.stringMatching(GUID) });

    // assert: what the service saw — every request with the token, a client-request-id and the SDK's version
    const fromClient = seen.filter((r) => r.url.startsWith('/beta/deviceManagement/'));
    expect(fromClient.map((r) => r.method)).toEqual(['POST', 'POST', 'GET', 'PATCH', 'GET', 'GET', 'GET', 'GET']);
    for (const request of fromClient) {
      expect(request).toMatchObject({ authorization: `Bearer ${bearer}`, clientRequestId: expect.stringMatching(GUID), sdkVersion: expect.stringMatching(/^graph-js\/3\.0\.7\b/) });
    }
    // the client-request-id is echoed back, the request-id is the service's own
    const rawRequest = fromClient.find((r) => r.url.includes('select=id'))!;
    expect(out.raw.status).toBe(200);
    expect(out.raw.clientRequestId).toBe(rawRequest.clientRequestId);
    expect(out.raw.requestId).not.toBe(rawRequest.clientRequestId);
  }, 120000);
});
