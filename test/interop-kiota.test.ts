import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { GUID, startService, TestService, token } from './support/service';

/**
 * The Kiota-based Microsoft Graph beta SDK (@microsoft/msgraph-beta-sdk 1.0.0-preview.81, msgraph-sdk-core
 * 1.0.0-preview.17, kiota 1.0.0-preview.109), ESM only, in a child process: GraphBetaRequestAdapter with
 * `baseUrl` = the service root and BaseBearerTokenAuthenticationProvider over an AccessTokenProvider of our own;
 * requests built from the SDK's URI templates; answers read by its Graph model parsers; PageIterator over nextLinks;
 * a 404 through its ODataError mapping.
 */
describe('Kiota-based Microsoft Graph beta SDK', () => {
  let service: TestService;
  const seen: { method: string; url: string; authorization?: string; sdkVersion?: string; userAgent?: string }[] = [];
  beforeAll(async () => {
    service = await startService();
    service.app.server.on('request', (req) =>
      seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, sdkVersion: req.headers.sdkversion as string | undefined, userAgent: req.headers['user-agent'] }),
    );
  });
  afterAll(() => service.close());

  it('creates, gets, patches, counts, pages through and gets a mapped 404, reading answers with its model parsers', async () => {
    // arrange
    const bearer = await token();

    // act
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [join(__dirname, 'support', 'kiota-graph.child.mjs')],
        { env: { PATH: process.env.PATH, GRAPH_ROOT: service.root, TOKEN: bearer }, timeout: 60000 },
        (_err, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
      );
    });
    const out = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}');

    // assert: what the SDK read
    expect([run.code, out.failed, run.stderr]).toEqual([0, undefined, '']);
    expect(out.created).toEqual(
      ['KIOTA-1', 'KIOTA-2', 'KIOTA-3'].map((serialNumber) => ({ id: expect.stringMatching(GUID), serialNumber, groupTag: 'kiota', status: 'unknown', errorCode: 0, hash: 80 })),
    );
    expect(out.got).toEqual({ id: out.created[0].id, serialNumber: 'KIOTA-1', groupTag: null, status: 'unknown' });
    expect(out.count).toBe(3);
    expect(out.firstPage).toEqual({ count: 3, size: 1, nextLink: expect.stringMatching(new RegExp(`^${service.root.replace(/\./g, '\\.')}/deviceManagement/importedWindowsAutopilotDeviceIdentities\\?`)) });
    expect(out.walked).toEqual([
      { serialNumber: 'KIOTA-1', groupTag: 'kiota', status: 'unknown' },
      { serialNumber: 'KIOTA-2', groupTag: 'kiota-patched', status: 'unknown' },
      { serialNumber: 'KIOTA-3', groupTag: 'kiota', status: 'unknown' },
    ]);
    expect(out.state).toBe('Complete');
    expect(out.notFound).toEqual({ status: 404, code: 'ResourceNotFound', message: "importedWindowsAutopilotDeviceIdentity '00000000-0000-0000-0000-000000000000' was not found.", isODataError: true });

    // assert: what the service saw — every request with our token and the SDK's headers; pages followed by nextLink
    const fromSdk = seen.filter((r) => r.url.startsWith('/beta/deviceManagement/'));
    expect(fromSdk.map((r) => r.method)).toEqual(['POST', 'POST', 'POST', 'GET', 'PATCH', 'GET', 'GET', 'GET', 'GET']);
    expect(out.tokens).toBe(fromSdk.length);
    for (const request of fromSdk) {
      expect(request).toMatchObject({ authorization: `Bearer ${bearer}`, sdkVersion: expect.stringMatching(/^graph-typescript-beta\//), userAgent: expect.stringMatching(/kiota-typescript\//) });
    }
    // the first page has one device (Prefer: odata.maxpagesize=1); PageIterator sends no Prefer, so its one nextLink
    // request gets the other two
    expect(fromSdk[5].url).toMatch(/\/\$count\?\$filter=/);
    expect(fromSdk[6].url).toMatch(/\?\$count=true&\$filter=startswith/);
    expect(fromSdk.filter((r) => r.url.includes('$skiptoken='))).toEqual([fromSdk[7]]);
  }, 90000);
});
