import * as Multipasta from 'multipasta';
import { aDevice } from './fixtures/devices';
import { GUID, LIVE, startService, TestResponse, TestService, token, UPLOADS } from './support/service';

/**
 * `POST /beta/$batch` over real HTTP (OData 4.01 Part 1 §11.7, JSON Format §19, Graph's JSON batching): both formats,
 * the three URL forms, dependsOn and 424, atomicity groups and change sets rolled back as a whole, `$<id>`
 * references, per-part authentication and throttling, the limits, and the Graph JS client's own batch shape.
 */
const JSON_TYPE = 'application/json;odata.metadata=minimal';
const DEVICE_TYPE = '#microsoft.graph.importedWindowsAutopilotDeviceIdentity';
const WEAK_ETAG = /^W\/"\d+"$/;
const GRAPH_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/;

let service: TestService;
let root: string;
/** A device of the live collection every read below can address. */
let known: Record<string, any>;

beforeAll(async () => {
  service = await startService();
  root = service.root;
  known = (await service.request('POST', LIVE, { body: aDevice({ serialNumber: 'KNOWN-1' }) })).body;
});
afterAll(() => service.close());

const json = { 'Content-Type': 'application/json' };
const batch = (requests: unknown[], headers: Record<string, string> = {}) => service.request('POST', '$batch', { body: { requests }, headers });

/** The body of a direct GET, to compare a batch part's body with. */
const direct = async (path: string) => (await service.get(path)).body;

/** Serials of the live collection (what is committed). */
async function liveSerials(): Promise<string[]> {
  const res = await service.get(`${LIVE}?$select=serialNumber&$top=999`);
  return (res.body.value as { serialNumber: string }[]).map((d) => d.serialNumber).sort();
}

function expectBatchEnvelope(res: TestResponse, contentType: string | RegExp) {
  expect(res.status).toBe(200);
  expect(res.headers.get('odata-version')).toBe('4.0');
  expect(res.headers.get('request-id')).toMatch(GUID);
  if (typeof contentType === 'string') expect(res.headers.get('content-type')).toBe(contentType);
  else expect(res.headers.get('content-type')).toMatch(contentType);
}

/** Graph's error body inside a part: exact code and message, innerError with the batch's request id. */
function graphError(res: TestResponse, code: string, message: string | RegExp, target?: string) {
  return {
    error: {
      code,
      message: typeof message === 'string' ? message : expect.stringMatching(message),
      ...(target === undefined ? {} : { target }),
      innerError: { date: expect.stringMatching(GRAPH_DATE), 'request-id': res.headers.get('request-id'), 'client-request-id': expect.any(String) },
    },
  };
}

/** A Graph error answer to the whole batch. */
function expectBatchError(res: TestResponse, status: number, code: string, message: string | RegExp, target?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/json');
  expect(res.headers.get('odata-version')).toBe('4.0');
  expect(res.body).toEqual(graphError(res, code, message, target));
}

describe('JSON batch', () => {
  it.each([
    ['relative to the service root', () => `${LIVE}/${known.id}`],
    ['an absolute path with the root (Graph JS client)', () => `/beta/${LIVE}/${known.id}`],
    ['a Graph-style absolute path without the root', () => `/${LIVE}/${known.id}`],
    ['an absolute URL of this host', () => `${root}/${LIVE}/${known.id}`],
    ["a key in parentheses", () => `${LIVE}('${known.id}')`],
  ])('runs a GET whose URL is %s, answering what a direct GET answers', async (_form, url) => {
    const res = await batch([{ id: 'a', method: 'get', url: url() }]);

    expectBatchEnvelope(res, 'application/json');
    expect(res.body).toEqual({
      responses: [{ id: 'a', status: 200, headers: { 'OData-Version': '4.0', ETag: known['@odata.etag'], 'Content-Type': JSON_TYPE }, body: await direct(`${LIVE}/${known.id}`) }],
    });
  });

  it('keeps the query of a part (select, filter, count) and answers text for /$count', async () => {
    const res = await batch([
      { id: '1', method: 'GET', url: `/beta/${LIVE}?$select=serialNumber&$filter=serialNumber eq 'KNOWN-1'` },
      { id: '2', method: 'GET', url: `${LIVE}/$count?$filter=serialNumber eq 'KNOWN-1'` },
    ]);

    expectBatchEnvelope(res, 'application/json');
    expect(res.body.responses[0]).toMatchObject({ id: '1', status: 200, body: { value: [{ serialNumber: 'KNOWN-1' }] } });
    expect(Object.keys(res.body.responses[0].body.value[0]).sort()).toEqual(['@odata.etag', '@odata.type', 'id', 'serialNumber']);
    expect(res.body.responses[1]).toEqual({ id: '2', status: 200, headers: { 'OData-Version': '4.0', 'Content-Type': 'text/plain' }, body: '1' });
  });

  it('answers an absolute URL of another host with 400 for that part only', async () => {
    const res = await batch([
      { id: '1', method: 'GET', url: `http://example.com/beta/${LIVE}` },
      { id: '2', method: 'GET', url: `${LIVE}/${known.id}` },
    ]);

    expectBatchEnvelope(res, 'application/json');
    expect(res.body.responses[0]).toEqual({
      id: '1',
      status: 400,
      headers: { 'OData-Version': '4.0', 'Content-Language': 'en', 'Content-Type': 'application/json' },
      body: graphError(res, 'BadRequest', `The request URL 'http://example.com/beta/${LIVE}' does not address this service (${root}).`),
    });
    expect(res.body.responses[1].status).toBe(200);
  });

  it('takes the batch shape of the Microsoft Graph JS client 3.0.7 (version-prefixed URLs, body objects, Content-Type per request)', async () => {
    // What BatchRequestContent.getContent() sends for a create and a read.
    const res = await service.request('POST', '$batch', {
      headers: { ...json, SdkVersion: 'graph-js/3.0.7' },
      body: {
        requests: [
          { id: '1', url: `/beta/${LIVE}`, method: 'POST', body: aDevice({ serialNumber: 'GRAPHJS-1' }), headers: { 'Content-Type': 'application/json' } },
          { id: '2', url: `/beta/${LIVE}?$filter=serialNumber eq 'GRAPHJS-1'`, method: 'GET', dependsOn: ['1'] },
        ],
      },
    });

    expectBatchEnvelope(res, 'application/json');
    const [created, listed] = res.body.responses;
    const id = created.body.id;
    expect(id).toMatch(GUID);
    expect(created).toEqual({
      id: '1',
      status: 201,
      headers: {
        'OData-Version': '4.0',
        ETag: 'W/"1"',
        Location: `${root}/deviceManagement/importedWindowsAutopilotDeviceIdentities('${id}')`,
        'Content-Type': JSON_TYPE,
      },
      body: await direct(`${LIVE}/${id}`),
    });
    expect(listed.status).toBe(200);
    expect(listed.body.value.map((d: { id: string }) => d.id)).toEqual([id]);
  });

  it('accepts the import action with the Autopilot CSV as a text body', async () => {
    const csv = 'Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\nCSV-BATCH-1,,' + Buffer.alloc(64, 7).toString('base64') + ',lab,\r\n';
    const res = await batch([{ id: 'csv', method: 'POST', url: `${LIVE}/import`, headers: { 'content-type': 'text/csv' }, body: csv }]);

    expectBatchEnvelope(res, 'application/json');
    expect(res.body.responses[0]).toMatchObject({ id: 'csv', status: 200, body: { value: [{ '@odata.type': DEVICE_TYPE, serialNumber: 'CSV-BATCH-1', groupTag: 'lab' }] } });
  });

  it('gives a request whose dependency failed 424 FailedDependency, and its dependants too, and goes on with the rest', async () => {
    const res = await batch([
      { id: '1', method: 'GET', url: `${LIVE}/00000000-0000-0000-0000-000000000000` },
      { id: '2', method: 'POST', url: LIVE, dependsOn: ['1'], headers: json, body: aDevice({ serialNumber: 'DEP-2' }) },
      { id: '3', method: 'GET', url: LIVE, dependsOn: ['2'] },
      { id: '4', method: 'GET', url: `${LIVE}/${known.id}` },
    ]);

    expectBatchEnvelope(res, 'application/json');
    const [first, second, third, fourth] = res.body.responses;
    expect(first).toMatchObject({ id: '1', status: 404, body: { error: { code: 'ResourceNotFound' } } });
    expect(second).toEqual({
      id: '2',
      status: 424,
      headers: { 'OData-Version': '4.0', 'Content-Language': 'en', 'Content-Type': 'application/json' },
      body: graphError(res, 'FailedDependency', "The request depends on '1', which failed."),
    });
    expect(third).toMatchObject({ id: '3', status: 424, body: { error: { code: 'FailedDependency', message: "The request depends on '2', which failed." } } });
    expect(fourth).toMatchObject({ id: '4', status: 200 });
    expect(await liveSerials()).not.toContain('DEP-2');
  });

  it('stops after the first failure with Prefer: continue-on-error=false', async () => {
    const res = await batch(
      [
        { id: '1', method: 'GET', url: `${LIVE}/00000000-0000-0000-0000-000000000000` },
        { id: '2', method: 'GET', url: `${LIVE}/${known.id}` },
      ],
      { Prefer: 'odata.continue-on-error=false' },
    );

    expectBatchEnvelope(res, 'application/json');
    expect(res.body.responses.map((r: { id: string; status: number }) => [r.id, r.status])).toEqual([['1', 404]]);
  });

  it('rolls an atomicity group back as a whole: a create and an invalid PATCH leave nothing created', async () => {
    const uploadsBefore = (await service.get(`${UPLOADS}/$count`)).text;
    const res = await batch([
      { id: 'up', atomicityGroup: 'g1', method: 'POST', url: UPLOADS, headers: json, body: {} },
      { id: 'dev', atomicityGroup: 'g1', method: 'POST', url: LIVE, headers: json, body: aDevice({ serialNumber: 'ATOMIC-1' }) },
      { id: 'bad', atomicityGroup: 'g1', method: 'PATCH', url: `${LIVE}/${known.id}`, headers: json, body: { noSuchProperty: 1 } },
      { id: 'after', atomicityGroup: 'g1', method: 'POST', url: LIVE, headers: json, body: aDevice({ serialNumber: 'ATOMIC-2' }) },
      { id: 'next', method: 'GET', url: `${LIVE}/${known.id}`, dependsOn: ['g1'] },
    ]);

    expectBatchEnvelope(res, 'application/json');
    const rolledBack = "The atomicity group 'g1' was rolled back: request 'bad' failed with 400.";
    expect(res.body.responses.map((r: { id: string; atomicityGroup?: string; status: number }) => [r.id, r.atomicityGroup, r.status])).toEqual([
      ['up', 'g1', 424],
      ['dev', 'g1', 424],
      ['bad', 'g1', 400],
      ['after', 'g1', 424],
      ['next', undefined, 424],
    ]);
    expect(res.body.responses[0].body).toEqual(graphError(res, 'FailedDependency', rolledBack));
    expect(res.body.responses[2].body.error).toMatchObject({ code: 'BadRequest', message: expect.stringContaining('noSuchProperty') });
    expect(res.body.responses[4].body.error.message).toBe("The request depends on 'g1', which failed.");
    // Nothing of the group is there.
    expect(await liveSerials()).not.toContain('ATOMIC-1');
    expect((await service.get(`${UPLOADS}/$count`)).text).toBe(uploadsBefore);
    expect((await direct(`${LIVE}/${known.id}`))['@odata.etag']).toBe(known['@odata.etag']);
  });

  it('commits an atomicity group whose requests all succeed, and refers to an upload created in it ($id) before the commit', async () => {
    const res = await batch([
      { id: '1', atomicityGroup: 'upload', method: 'POST', url: UPLOADS, headers: json, body: {} },
      { id: '2', atomicityGroup: 'upload', dependsOn: ['1'], method: 'POST', url: '$1/deviceIdentities', headers: json, body: aDevice({ serialNumber: 'REF-1' }) },
      { id: '3', atomicityGroup: 'upload', dependsOn: ['1'], method: 'POST', url: '$1/deviceIdentities/import', headers: json, body: { importedWindowsAutopilotDeviceIdentities: [aDevice({ serialNumber: 'REF-2' })] } },
      { id: '4', dependsOn: ['upload'], method: 'GET', url: '$1/deviceIdentities?$select=serialNumber&$orderby=serialNumber' },
    ]);

    expectBatchEnvelope(res, 'application/json');
    const [upload, device, imported, listed] = res.body.responses;
    expect([upload.status, device.status, imported.status, listed.status]).toEqual([201, 201, 200, 200]);
    const uploadId = upload.body.id;
    expect(device.headers.Location).toBe(`${root}/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads('${uploadId}')/deviceIdentities('${device.body.id}')`);
    expect(listed.body.value.map((d: { serialNumber: string }) => d.serialNumber)).toEqual(['REF-1', 'REF-2']);
    // Committed: a direct read sees both devices in the new upload.
    const after = await service.get(`${UPLOADS}/${uploadId}/deviceIdentities?$select=serialNumber&$orderby=serialNumber`);
    expect(after.body.value.map((d: { serialNumber: string }) => d.serialNumber)).toEqual(['REF-1', 'REF-2']);
  });

  it('refers to a created entity ($id) outside an atomicity group; a reference to a failed request is 424', async () => {
    const res = await batch([
      { id: 'u', method: 'POST', url: `/beta/${UPLOADS}`, headers: json, body: {} },
      { id: 'd', dependsOn: ['u'], method: 'POST', url: '$u/deviceIdentities', headers: json, body: aDevice({ serialNumber: 'REF-3' }) },
      { id: 'x', method: 'POST', url: UPLOADS, headers: json, body: { noSuchProperty: true } },
      { id: 'y', method: 'POST', url: '$x/deviceIdentities', headers: json, body: aDevice({ serialNumber: 'REF-4' }) },
    ]);

    const [u, d, x, y] = res.body.responses;
    expect([u.status, d.status, x.status, y.status]).toEqual([201, 201, 400, 424]);
    expect(d.body).toEqual(await direct(`${UPLOADS}/${u.body.id}/deviceIdentities/${d.body.id}`));
    expect(y.body.error.message).toBe("The request depends on 'x', which failed.");
  });

  it('authorises each part on its own: a read-only token on a write part is 403 for that part only', async () => {
    const readOnly = `Bearer ${await token('default', 'read')}`;
    const res = await batch([
      { id: '1', method: 'POST', url: LIVE, headers: { ...json, Authorization: readOnly }, body: aDevice({ serialNumber: 'AUTH-1' }) },
      { id: '2', method: 'GET', url: `${LIVE}/${known.id}`, headers: { authorization: readOnly } },
      { id: '3', method: 'POST', url: LIVE, headers: json, body: aDevice({ serialNumber: 'AUTH-2' }) },
      { id: '4', method: 'GET', url: `${LIVE}/${known.id}`, headers: { authorization: 'Bearer not-a-jwt' } },
    ]);

    expectBatchEnvelope(res, 'application/json');
    const [denied, read, written, invalid] = res.body.responses;
    expect(denied).toEqual({
      id: '1',
      status: 403,
      headers: { 'OData-Version': '4.0', 'Content-Language': 'en', 'Content-Type': 'application/json' },
      body: graphError(res, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation: DeviceManagementServiceConfig.ReadWrite.All is required.'),
    });
    expect(read.status).toBe(200);
    expect(written.status).toBe(201);
    expect(invalid).toMatchObject({ status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="graph", error="invalid_token"' }, body: { error: { code: 'InvalidAuthenticationToken' } } });
    expect(await liveSerials()).toEqual(expect.arrayContaining(['AUTH-2']));
    expect(await liveSerials()).not.toContain('AUTH-1');
  });

  it('scopes each part to the tenant of its token', async () => {
    const other = `Bearer ${await token('other-tenant', 'write')}`;
    const res = await batch([
      { id: '1', method: 'GET', url: `${LIVE}/${known.id}`, headers: { authorization: other } },
      { id: '2', method: 'GET', url: `${LIVE}/$count`, headers: { authorization: other } },
    ]);

    expect(res.body.responses.map((r: { status: number; body: unknown }) => [r.status, r.status === 200 ? r.body : undefined])).toEqual([
      [404, undefined],
      [200, '0'],
    ]);
  });

  const twentyOne = Array.from({ length: 21 }, (_, i) => ({ id: String(i + 1), method: 'GET', url: LIVE }));
  const refusals: [string, unknown, string, string?][] = [
    ['21 requests', { requests: twentyOne }, 'A batch holds at most 20 requests; this one has 21.'],
    ['a duplicate id', { requests: [{ id: '1', method: 'GET', url: LIVE }, { id: '1', method: 'GET', url: LIVE }] }, "requests[1]: the request id '1' is used twice."],
    ['no requests array', { value: [] }, "Unexpected member 'value' in a JSON batch; it holds \"requests\".", 'value'],
    ['requests that is not an array', { requests: {} }, 'A JSON batch needs a "requests" array.', 'requests'],
    ['a request without id', { requests: [{ method: 'GET', url: LIVE }] }, 'requests[0].id must be a non-empty string.', 'requests[0].id'],
    ['an unknown method', { requests: [{ id: '1', method: 'HEAD', url: LIVE }] }, 'requests[0].method must be one of GET, POST, PATCH, PUT or DELETE.', 'requests[0].method'],
    ['a request without url', { requests: [{ id: '1', method: 'GET' }] }, 'requests[0].url must be a non-empty string.', 'requests[0].url'],
    ['a GET with a body', { requests: [{ id: '1', method: 'GET', url: LIVE, body: {} }] }, 'requests[0]: a GET request has no body.', 'requests[0].body'],
    ['a header that is not a string', { requests: [{ id: '1', method: 'GET', url: LIVE, headers: { accept: 1 } }] }, "requests[0].headers['accept'] must be a string.", 'requests[0].headers'],
    ['a forward dependsOn', { requests: [{ id: '1', method: 'GET', url: LIVE, dependsOn: ['2'] }, { id: '2', method: 'GET', url: LIVE }] }, "requests[0]: dependsOn names '2', which is not an earlier request or atomicity group."],
    ['a reference to a later request', { requests: [{ id: '1', method: 'GET', url: '$2/deviceIdentities' }, { id: '2', method: 'POST', url: UPLOADS, body: {} }] }, "requests[0]: the URL refers to '$2', which is not an earlier request."],
    [
      'an atomicity group split in two',
      { requests: [{ id: '1', atomicityGroup: 'g', method: 'GET', url: LIVE }, { id: '2', method: 'GET', url: LIVE }, { id: '3', atomicityGroup: 'g', method: 'GET', url: LIVE }] },
      "requests[2]: the requests of atomicity group 'g' must be adjacent.",
    ],
    ['a group named like a request', { requests: [{ id: 'g', method: 'GET', url: LIVE }, { id: '2', atomicityGroup: 'g', method: 'GET', url: LIVE }] }, "requests[1]: 'g' names both a request and an atomicity group."],
    ['a conditional request (if)', { requests: [{ id: '1', method: 'GET', url: LIVE, if: '$0/$succeeded' }] }, 'requests[0].if: conditional requests are not supported; use dependsOn.', 'requests[0].if'],
    ['a text body that is not a string', { requests: [{ id: '1', method: 'POST', url: `${LIVE}/import`, headers: { 'content-type': 'text/csv' }, body: {} }] }, "requests[0].body must be a string for the media type 'text/csv' (text as is, other types base64url-encoded).", 'requests[0].body'],
    ['a body that nests too deep', { requests: [{ id: '1', method: 'POST', url: LIVE, headers: json, body: JSON.parse('['.repeat(70) + ']'.repeat(70)) }] }, 'The request body nests deeper than 64 levels.'],
  ];
  // Rows without a target get an explicit undefined: jest passes a `done` callback in a missing last argument.
  it.each(refusals.map(([what, body, message, target]) => [what, body, message, target]))('refuses a batch with %s: 400 and nothing run', async (_what, body, message, target) => {
    const uploadsBefore = (await service.get(`${UPLOADS}/$count`)).text;
    const res = await service.request('POST', '$batch', { body });

    expectBatchError(res, 400, 'BadRequest', message, target);
    expect((await service.get(`${UPLOADS}/$count`)).text).toBe(uploadsBefore);
  });

  it('refuses a body that is not JSON: 400', async () => {
    const res = await service.request('POST', '$batch', { headers: json, body: '{"requests": [' });

    expectBatchError(res, 400, 'BadRequest', /^The request body is not valid JSON/);
  });

  it('answers a batch inside a batch with 400 for that part', async () => {
    const res = await batch([{ id: '1', method: 'POST', url: '$batch', headers: json, body: { requests: [] } }]);

    expect(res.body.responses[0]).toMatchObject({ id: '1', status: 400, body: { error: { code: 'BadRequest', message: 'A request inside a batch cannot itself be a batch request.' } } });
  });

  it.each([
    ['no token', { anonymous: true }, 401, 'InvalidAuthenticationToken', 'Access token is empty.'],
    ['GET', { method: 'GET' }, 405, 'MethodNotAllowed', "The HTTP method 'GET' is not allowed on this resource."],
    ['a text/plain body', { headers: { 'Content-Type': 'text/plain' } }, 415, 'UnsupportedMediaType', "The media type 'text/plain' is not a batch format; send application/json or multipart/mixed."],
    ['Accept: multipart/mixed on a JSON batch', { headers: { ...json, Accept: 'multipart/mixed' } }, 406, 'NotAcceptable', 'This batch is answered as application/json, the format it was sent in; the Accept header (multipart/mixed) does not allow it.'],
  ])('answers a batch request with %s: %s', async (_what, options: any, status, code, message) => {
    const res = await service.request(options.method ?? 'POST', '$batch', {
      anonymous: options.anonymous,
      headers: options.headers ?? json,
      body: options.method === 'GET' ? undefined : JSON.stringify({ requests: [] }),
    });

    expectBatchError(res, status, code, message);
  });

  it('answers an empty batch with no responses', async () => {
    const res = await batch([]);

    expectBatchEnvelope(res, 'application/json');
    expect(res.body).toEqual({ responses: [] });
  });
});

// ---- multipart ----

interface MimePart {
  headers: Record<string, string>;
  body: string;
}

/** Splits a multipart body with the same library the service uses; fails the test on a malformed one. */
function splitMultipart(contentType: string, body: string): MimePart[] {
  const parts: MimePart[] = [];
  let error: unknown;
  let done = false;
  const parser = Multipasta.make({
    headers: { 'content-type': contentType },
    isFile: () => false,
    onField: (info, value) => parts.push({ headers: info.headers as Record<string, string>, body: Buffer.from(value).toString('utf8') }),
    onFile: () => () => undefined,
    onError: (e) => (error ??= e),
    onDone: () => (done = true),
  });
  parser.write(Buffer.from(body));
  parser.end();
  expect(error).toBeUndefined();
  expect(done).toBe(true);
  return parts;
}

/** An application/http response part: status, headers (lower-case names), body. */
function httpResponse(part: MimePart): { contentId?: string; status: number; headers: Record<string, string>; body: any } {
  expect(part.headers['content-type']).toBe('application/http');
  const [head, ...rest] = part.body.split('\r\n\r\n');
  const [statusLine, ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)![1]);
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  const text = rest.join('\r\n\r\n');
  expect(Buffer.byteLength(text)).toBe(headers['content-length'] === undefined ? 0 : Number(headers['content-length']));
  return { contentId: part.headers['content-id'], status, headers, body: text && headers['content-type']?.startsWith('application/json') ? JSON.parse(text) : text };
}

const CRLF = '\r\n';
const request = (line: string, headers: Record<string, string> = {}, body = '', contentId?: string) =>
  `Content-Type: application/http${CRLF}Content-Transfer-Encoding: binary${CRLF}${contentId ? `Content-ID: ${contentId}${CRLF}` : ''}${CRLF}` +
  `${line}${CRLF}${Object.entries(headers).map(([k, v]) => `${k}: ${v}${CRLF}`).join('')}${CRLF}${body}`;
const changeSet = (boundary: string, parts: string[]) => `Content-Type: multipart/mixed; boundary=${boundary}${CRLF}${CRLF}${multipartBody(boundary, parts)}`;
const multipartBody = (boundary: string, parts: string[]) => `${parts.map((p) => `--${boundary}${CRLF}${p}${CRLF}`).join('')}--${boundary}--${CRLF}`;
const postMultipart = (parts: string[], headers: Record<string, string> = {}) =>
  service.request('POST', '$batch', { headers: { 'Content-Type': 'multipart/mixed; boundary=batch_36522ad7', ...headers }, body: multipartBody('batch_36522ad7', parts) });

describe('multipart batch', () => {
  it('answers requests and a change set with Content-ID references, mirroring the request structure', async () => {
    const res = await postMultipart([
      request(`GET ${LIVE}/${known.id} HTTP/1.1`, { Accept: 'application/json' }),
      changeSet('changeset_77162fcd', [
        request(`POST /beta/${UPLOADS} HTTP/1.1`, json, '{}', '1'),
        request('POST $1/deviceIdentities HTTP/1.1', json, JSON.stringify(aDevice({ serialNumber: 'MP-1' })), '2'),
      ]),
      request(`GET /${LIVE}?$filter=${encodeURIComponent("serialNumber eq 'KNOWN-1'")}&$select=serialNumber HTTP/1.1`),
    ]);

    expectBatchEnvelope(res, /^multipart\/mixed; boundary=batchresponse_[0-9a-f-]{36}$/);
    const parts = splitMultipart(res.headers.get('content-type')!, res.text);
    expect(parts).toHaveLength(3);
    const read = httpResponse(parts[0]);
    expect(read).toEqual({ contentId: undefined, status: 200, headers: expect.objectContaining({ 'content-type': JSON_TYPE, 'odata-version': '4.0', etag: known['@odata.etag'] }), body: await direct(`${LIVE}/${known.id}`) });

    expect(parts[1].headers['content-type']).toMatch(/^multipart\/mixed; boundary=changesetresponse_[0-9a-f-]{36}$/);
    const [upload, device] = splitMultipart(parts[1].headers['content-type'], parts[1].body).map(httpResponse);
    expect([upload.contentId, upload.status, device.contentId, device.status]).toEqual(['1', 201, '2', 201]);
    expect(upload.headers.location).toBe(`${root}/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads('${upload.body.id}')`);
    expect(device.headers.location).toBe(`${upload.headers.location}/deviceIdentities('${device.body.id}')`);
    expect(device.body).toEqual(await direct(`${UPLOADS}/${upload.body.id}/deviceIdentities/${device.body.id}`));

    const listed = httpResponse(parts[2]);
    expect(listed.status).toBe(200);
    expect(listed.body.value).toEqual([{ '@odata.type': DEVICE_TYPE, '@odata.etag': expect.stringMatching(WEAK_ETAG), id: known.id, serialNumber: 'KNOWN-1' }]);
  });

  it('rolls a failed change set back and answers it with one error part; the batch stops there', async () => {
    const res = await postMultipart([
      changeSet('cs_1', [
        request(`POST ${LIVE} HTTP/1.1`, json, JSON.stringify(aDevice({ serialNumber: 'MP-ROLLBACK-1' })), 'a'),
        request(`PATCH ${LIVE}/${known.id} HTTP/1.1`, json, '{"serialNumber": 42}', 'b'),
      ]),
      request(`POST ${LIVE} HTTP/1.1`, json, JSON.stringify(aDevice({ serialNumber: 'MP-NOT-RUN' }))),
    ]);

    expectBatchEnvelope(res, /^multipart\/mixed; boundary=/);
    const parts = splitMultipart(res.headers.get('content-type')!, res.text);
    expect(parts).toHaveLength(1);
    const failure = httpResponse(parts[0]);
    expect(failure).toEqual({
      contentId: undefined,
      status: 400,
      headers: { 'odata-version': '4.0', 'content-language': 'en', 'content-type': 'application/json', 'content-length': expect.any(String) },
      body: graphError(res, 'BadRequest', /serialNumber/, 'serialNumber'),
    });
    expect(await liveSerials()).not.toContain('MP-ROLLBACK-1');
    expect(await liveSerials()).not.toContain('MP-NOT-RUN');
    expect((await direct(`${LIVE}/${known.id}`)).serialNumber).toBe('KNOWN-1');
  });

  it('goes on after a failure with Prefer: odata.continue-on-error', async () => {
    const res = await postMultipart(
      [
        changeSet('cs_2', [request(`DELETE ${LIVE}/00000000-0000-0000-0000-000000000000 HTTP/1.1`, {}, '', '1')]),
        request(`POST ${LIVE} HTTP/1.1`, json, JSON.stringify(aDevice({ serialNumber: 'MP-CONTINUED' }))),
      ],
      { Prefer: 'odata.continue-on-error' },
    );

    const parts = splitMultipart(res.headers.get('content-type')!, res.text).map(httpResponse);
    expect(parts.map((p) => [p.status, p.body?.error?.code ?? p.body.serialNumber])).toEqual([
      [404, 'ResourceNotFound'],
      [201, 'MP-CONTINUED'],
    ]);
  });

  it('takes the request-line forms of Part 1: absolute URL, absolute path with Host, no HTTP version', async () => {
    const res = await postMultipart([
      request(`GET ${root}/${LIVE}/${known.id} HTTP/1.1`),
      request(`GET /beta/${LIVE}/${known.id} HTTP/1.1`, { Host: new URL(root).host }),
      request(`GET ${LIVE}('${known.id}')`),
    ]);

    const parts = splitMultipart(res.headers.get('content-type')!, res.text).map(httpResponse);
    expect(parts.map((p) => [p.status, p.body.id])).toEqual([
      [200, known.id],
      [200, known.id],
      [200, known.id],
    ]);
  });

  it('authorises parts with the batch token: a read-only batch cannot write through a change set', async () => {
    const res = await postMultipart([changeSet('cs_3', [request(`POST ${LIVE} HTTP/1.1`, json, JSON.stringify(aDevice({ serialNumber: 'MP-RO' })), '1')])], {
      Authorization: `Bearer ${await token('default', 'read')}`,
    });

    const [part] = splitMultipart(res.headers.get('content-type')!, res.text).map(httpResponse);
    expect([part.status, part.body.error.code]).toEqual([403, 'Authorization_RequestDenied']);
    expect(await liveSerials()).not.toContain('MP-RO');
  });

  it('answers a multipart batch as multipart when Accept is application/json (what @odata/client sends); 406 for text/csv', async () => {
    const asJson = await postMultipart([request(`GET ${LIVE}/${known.id} HTTP/1.1`)], { Accept: 'application/json' });
    const asCsv = await postMultipart([request(`GET ${LIVE}/${known.id} HTTP/1.1`)], { Accept: 'text/csv' });

    expectBatchEnvelope(asJson, /^multipart\/mixed; boundary=batchresponse_/);
    expect(splitMultipart(asJson.headers.get('content-type')!, asJson.text).map(httpResponse).map((p) => [p.status, p.body.id])).toEqual([[200, known.id]]);
    expectBatchError(asCsv, 406, 'NotAcceptable', 'This batch is answered as multipart/mixed, the format it was sent in; the Accept header (text/csv) does not allow it.');
  });

  it.each([
    ['no boundary', 'multipart/mixed', `--b${CRLF}${request(`GET ${LIVE} HTTP/1.1`)}${CRLF}--b--`, 'The multipart batch is malformed: its Content-Type needs a boundary parameter (multipart/mixed; boundary=…).'],
    ['no closing delimiter', 'multipart/mixed; boundary=b', `--b${CRLF}${request(`GET ${LIVE} HTTP/1.1`)}`, 'The multipart batch is malformed: it ends without its closing delimiter.'],
    ['a part that is not application/http', 'multipart/mixed; boundary=b', multipartBody('b', [`Content-Type: text/plain${CRLF}${CRLF}hello`]), "part 1: a batch part is application/http (a request) or multipart/mixed (a change set), not 'text/plain'."],
    ['a bad request line', 'multipart/mixed; boundary=b', multipartBody('b', [request('FETCH')]), "part 1: 'FETCH' is not a request line (METHOD URL HTTP/1.1)."],
    ['a method a batch cannot carry', 'multipart/mixed; boundary=b', multipartBody('b', [request(`HEAD ${LIVE} HTTP/1.1`)]), "part 1: the method 'HEAD' cannot be used in a batch (GET, POST, PATCH, PUT or DELETE)."],
    ['a change-set request without Content-ID', 'multipart/mixed; boundary=b', multipartBody('b', [changeSet('c', [request(`POST ${UPLOADS} HTTP/1.1`, json, '{}')])]), 'part 1, change set part 1: a request in a change set needs a Content-ID header.'],
    ['an empty change set', 'multipart/mixed; boundary=b', multipartBody('b', [`Content-Type: multipart/mixed; boundary=c${CRLF}${CRLF}--c--${CRLF}`]), 'part 1: the change set holds no request.'],
    ['a change set inside a change set', 'multipart/mixed; boundary=b', multipartBody('b', [changeSet('c', [changeSet('d', [request(`GET ${LIVE} HTTP/1.1`, {}, '', '1')])])]), 'part 1, change set part 1: a change set holds application/http requests only.'],
    ['a Content-ID used twice', 'multipart/mixed; boundary=b', multipartBody('b', [changeSet('c', [request(`POST ${UPLOADS} HTTP/1.1`, json, '{}', '1'), request(`POST ${UPLOADS} HTTP/1.1`, json, '{}', '1')])]), "part 1, change set part 2: the request id '1' is used twice."],
    ['21 requests', 'multipart/mixed; boundary=b', multipartBody('b', Array.from({ length: 21 }, () => request(`GET ${LIVE} HTTP/1.1`))), 'The multipart batch is malformed: it has more than 20 parts (a batch holds at most 20 requests).'],
    ['21 requests in change sets', 'multipart/mixed; boundary=b', multipartBody('b', [changeSet('c', Array.from({ length: 11 }, (_, i) => request(`POST ${UPLOADS} HTTP/1.1`, json, '{}', `c${i}`))), changeSet('d', Array.from({ length: 10 }, (_, i) => request(`POST ${UPLOADS} HTTP/1.1`, json, '{}', `d${i}`)))]), 'A batch holds at most 20 requests; this one has 21.'],
  ])('refuses a multipart batch with %s: 400', async (_what, contentType, body, message) => {
    const uploadsBefore = (await service.get(`${UPLOADS}/$count`)).text;
    const res = await service.request('POST', '$batch', { headers: { 'Content-Type': contentType }, body });

    expectBatchError(res, 400, 'BadRequest', message);
    expect((await service.get(`${UPLOADS}/$count`)).text).toBe(uploadsBefore);
  });
});

describe('throttling per part', () => {
  let throttled: TestService;
  beforeAll(async () => {
    throttled = await startService({ THROTTLE_WRITES: '2/600' });
  });
  afterAll(() => throttled.close());

  it('counts each write of a batch against the tenant: the third gets 429 with Retry-After', async () => {
    const res = await throttled.request('POST', '$batch', {
      body: { requests: [1, 2, 3].map((n) => ({ id: String(n), method: 'POST', url: UPLOADS, headers: json, body: {} })) },
    });

    expect(res.status).toBe(200);
    expect(res.body.responses.map((r: { status: number }) => r.status)).toEqual([201, 201, 429]);
    expect(res.body.responses[2].headers['Retry-After']).toMatch(/^\d+$/);
    expect(res.body.responses[2].body.error.code).toBe('TooManyRequests');
  });
});

describe('the import worker and atomicity groups', () => {
  let working: TestService;
  beforeAll(async () => {
    // The worker polls once a minute here: only a wake-up after the commit gets a new device processed in time.
    working = await startService({ IMPORT_WORKER: 'on', IMPORT_DELAY_MS: '0', IMPORT_POLL_MS: '60000' });
  });
  afterAll(() => working.close());

  it('is woken once the group has committed, and then processes the device created in it', async () => {
    const res = await working.request('POST', '$batch', {
      body: {
        requests: [
          { id: '1', atomicityGroup: 'g', method: 'POST', url: LIVE, headers: json, body: aDevice({ serialNumber: 'WORKER-1' }) },
          { id: '2', atomicityGroup: 'g', method: 'GET', url: `${LIVE}/$count` },
        ],
      },
    });
    expect(res.body.responses.map((r: { status: number }) => r.status)).toEqual([201, 200]);
    const id = res.body.responses[0].body.id;

    // Woken before the commit (PostgreSQL), the worker would find nothing yet and sleep for a minute.
    let status = 'unknown';
    for (const deadline = Date.now() + 10000; status === 'unknown' && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (await working.get(`${LIVE}/${id}`)).body.state.deviceImportStatus;
    }
    expect(status).toBe('complete');
  });
});

/** The Microsoft Graph JS client, when the project has it installed (another change adds it), batching against this server. */
const graphClient = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@microsoft/microsoft-graph-client');
  } catch {
    return undefined;
  }
})();

(graphClient ? describe : describe.skip)('Microsoft Graph JS client 3.0.7 (skipped unless @microsoft/microsoft-graph-client is installed)', () => {
  it('runs a BatchRequestContent against the server over plain http, with a middleware that adds the token', async () => {
    const { Client, BatchRequestContent, BatchResponseContent, HTTPMessageHandler } = graphClient;
    const bearer = `Bearer ${await token()}`;
    // Over http the client's auth handler attaches no token (custom hosts match https only): this middleware does, then fetches.
    const fetcher = new HTTPMessageHandler();
    const addToken = {
      setNext: () => undefined,
      async execute(context: { options?: { headers?: Record<string, string> | Headers } }) {
        context.options ??= {};
        const headers = context.options.headers;
        if (headers instanceof Headers) headers.set('Authorization', bearer);
        else context.options.headers = { ...headers, Authorization: bearer };
        return fetcher.execute(context);
      },
    };
    const client = Client.initWithMiddleware({ baseUrl: `${service.origin}/`, defaultVersion: 'beta', middleware: addToken });
    const create = new Request(`${root}/${LIVE}`, { method: 'POST', body: JSON.stringify(aDevice({ serialNumber: 'SDK-BATCH-1' })), headers: json });
    const read = new Request(`${root}/${LIVE}?$filter=serialNumber eq 'SDK-BATCH-1'`, { method: 'GET' });
    const content = new BatchRequestContent([
      { id: '1', request: create },
      { id: '2', request: read, dependsOn: ['1'] },
    ]);

    const raw = await client.api('/$batch').post(await content.getContent());
    const responses = new BatchResponseContent(raw);

    const created = responses.getResponseById('1');
    expect(created.status).toBe(201);
    const body = await created.json();
    expect(body.serialNumber).toBe('SDK-BATCH-1');
    const listed = await responses.getResponseById('2').json();
    expect(listed.value.map((d: { id: string }) => d.id)).toEqual([body.id]);
  });
});
