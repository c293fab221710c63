import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { aDevice } from './fixtures/devices';
import { DEFAULT_UPLOAD, GUID, LIVE, startService, TestResponse, TestService, token, UPLOADS } from './support/service';

/**
 * Errors in Graph's shape, everywhere (SPEC §4; graph-autopilot §5.1): `{"error":{"code","message","target?","details?",
 * "innerError":{"date","request-id","client-request-id"}}}`, with OData-Version, request-id and the echoed
 * client-request-id on the response. Bad input of any kind is a 4xx, never a 500.
 */
let service: TestService;
let upload: string;
let device: string;
let liveDevice: string;
let s2Device: string;
let doomedDevice: string;

beforeAll(async () => {
  service = await startService();
  upload = (await service.request('POST', UPLOADS, { body: {} })).body.id;
  device = (await service.request('POST', `${UPLOADS}/${upload}/deviceIdentities`, { body: aDevice() })).body.id;
  liveDevice = (await service.request('POST', LIVE, { body: aDevice() })).body.id;
  s2Device = (await service.request('POST', `${DEFAULT_UPLOAD}/deviceIdentities`, { body: aDevice() })).body.id;
  doomedDevice = (await service.request('POST', LIVE, { body: aDevice() })).body.id;
});
afterAll(() => service.close());

const GRAPH_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/;

/** The whole Graph error contract for one response. */
function expectGraphError(res: TestResponse, status: number, code: string, clientRequestId?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/json');
  expect(res.headers.get('content-language')).toBe('en');
  expect(res.headers.get('odata-version')).toBe('4.0');
  const requestId = res.headers.get('request-id');
  expect(requestId).toMatch(GUID);
  const echoed = res.headers.get('client-request-id');
  if (clientRequestId !== undefined) expect(echoed).toBe(clientRequestId);
  else expect(echoed).toBeTruthy();

  expect(Object.keys(res.body)).toEqual(['error']);
  const { code: actualCode, message, target, details, innerError, ...rest } = res.body.error;
  expect(rest).toEqual({});
  expect(actualCode).toBe(code);
  expect(typeof message).toBe('string');
  expect(message.length).toBeGreaterThan(0);
  if (target !== undefined) expect(typeof target).toBe('string');
  if (details !== undefined) expect(Array.isArray(details)).toBe(true);
  expect(innerError).toEqual({ date: expect.stringMatching(GRAPH_DATE), 'request-id': requestId, 'client-request-id': echoed });
  // No stack trace or SQL text ever reaches a client.
  expect(res.text).not.toMatch(/\bat .+\.(ts|js):\d+|SQLITE|SELECT |INSERT |QueryFailedError/);
}

/** Every route that takes a JSON body, by method. */
const JSON_ROUTES: [string, () => string][] = [
  ['POST', () => UPLOADS],
  ['PATCH', () => `${UPLOADS}/${upload}`],
  ['PUT', () => `${UPLOADS}('${upload}')`],
  ['PATCH', () => DEFAULT_UPLOAD],
  ['POST', () => `${UPLOADS}/${upload}/deviceIdentities`],
  ['PATCH', () => `${UPLOADS}/${upload}/deviceIdentities`],
  ['PATCH', () => `${UPLOADS}/${upload}/deviceIdentities/${device}`],
  ['PUT', () => `${UPLOADS}/${upload}/deviceIdentities('${device}')`],
  ['POST', () => `${UPLOADS}/${upload}/deviceIdentities/import`],
  ['POST', () => LIVE],
  ['PATCH', () => LIVE],
  ['PATCH', () => `${LIVE}/${liveDevice}`],
  ['POST', () => `${LIVE}/import`],
  ['POST', () => `${DEFAULT_UPLOAD}/deviceIdentities`],
  ['PATCH', () => `${DEFAULT_UPLOAD}/deviceIdentities`],
  ['PATCH', () => `${DEFAULT_UPLOAD}/deviceIdentities/${s2Device}`],
];

/** Readable resources of every kind. */
const READ_ROUTES: [string, () => string][] = [
  ['uploads', () => UPLOADS],
  ['upload', () => `${UPLOADS}/${upload}`],
  ['contained devices', () => `${UPLOADS}/${upload}/deviceIdentities`],
  ['contained device', () => `${UPLOADS}/${upload}/deviceIdentities/${device}`],
  ['live', () => LIVE],
  ['S2 singleton', () => DEFAULT_UPLOAD],
  ['S2 devices', () => `${DEFAULT_UPLOAD}/deviceIdentities`],
  ['autopilotDeviceStream', () => `${UPLOADS}/${upload}/autopilotDeviceStream()`],
];

describe('request bodies', () => {
  it.each(JSON_ROUTES)('%s %s: malformed JSON → 400 BadRequest', async (method, path) => {
    const res = await service.request(method, path(), { body: '{"groupTag": "x",', headers: { 'Content-Type': 'application/json', 'client-request-id': 'bad-json-1' } });

    expectGraphError(res, 400, 'BadRequest', 'bad-json-1');
    expect(res.body.error.message).toMatch(/not valid JSON/);
  });

  it.each(JSON_ROUTES)('%s %s: an empty body → 400 BadRequest', async (method, path) => {
    const res = await service.request(method, path(), { body: '', headers: { 'Content-Type': 'application/json' } });

    expectGraphError(res, 400, 'BadRequest');
  });

  it.each(JSON_ROUTES.flatMap(([method, path]) => [
    [method, path, 'text/plain'],
    [method, path, 'application/xml'],
    [method, path, 'application/x-www-form-urlencoded'],
    [method, path, 'application/json; charset=iso-8859-1'],
  ]))('%s %s with Content-Type %s → 415 UnsupportedMediaType', async (method, path, contentType) => {
    const res = await service.request(method, path(), { body: '{}', headers: { 'Content-Type': contentType } });

    expectGraphError(res, 415, 'UnsupportedMediaType');
  });

  it.each(JSON_ROUTES)('%s %s without Content-Type → 415 UnsupportedMediaType', async (method, path) => {
    // fetch labels a string body text/plain; an empty Content-Type header is as good as none.
    const res = await service.request(method, path(), { body: '{}', headers: { 'Content-Type': '' } });

    expectGraphError(res, 415, 'UnsupportedMediaType');
    expect(res.body.error.message).toMatch(/needs a Content-Type header/);
  });

  it.each([
    ['application/json; charset=utf-8'],
    ['application/json;charset="UTF-8"'],
    ['application/json;odata.metadata=minimal'],
    ['Application/JSON'],
  ])('Content-Type %s is JSON', async (contentType) => {
    const res = await service.request('POST', LIVE, { body: JSON.stringify(aDevice()), headers: { 'Content-Type': contentType } });

    expect(res.status).toBe(201);
  });

  it('a UTF-8 byte order mark before the JSON is tolerated', async () => {
    const res = await service.request('POST', LIVE, { body: `\uFEFF${JSON.stringify(aDevice())}`, headers: { 'Content-Type': 'application/json' } });

    expect(res.status).toBe(201);
  });
});

describe('413: bodies over 4 MB', () => {
  const LIMIT = 4 * 1024 * 1024;

  it.each([
    ['POST', () => UPLOADS],
    ['POST', () => LIVE],
    ['PATCH', () => `${LIVE}/${liveDevice}`],
    ['POST', () => `${LIVE}/import`],
  ])('%s %s with a declared Content-Length over the limit → 413 RequestEntityTooLarge', async (method, path) => {
    const body = JSON.stringify({ groupTag: 'x'.repeat(LIMIT) });

    const res = await service.request(method, path(), { body, headers: { 'Content-Type': 'application/json', 'client-request-id': 'big-1' } });

    expectGraphError(res, 413, 'RequestEntityTooLarge', 'big-1');
  });

  it('a chunked body that grows over the limit → 413 in Graph shape', async () => {
    // arrange: no Content-Length, so the limit must be enforced while reading
    const url = new URL(`${service.root}/${LIVE}`);
    const authorization = `Bearer ${await token()}`;

    // act
    const res = await new Promise<TestResponse>((resolve, reject) => {
      const req = httpRequest(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { Authorization: authorization, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'client-request-id': 'chunked-1' } },
        (r) => {
          let text = '';
          r.on('data', (c) => (text += c));
          r.on('end', () => resolve({ status: r.statusCode!, headers: new Headers(r.headers as Record<string, string>), text, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = () => {
        while (sent < LIMIT + chunk.length * 2) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      req.write('{"groupTag":"');
      pump();
    });

    // assert
    expectGraphError(res, 413, 'RequestEntityTooLarge', 'chunked-1');
  });

  it('a body of exactly 4 MB is accepted', async () => {
    const json = JSON.stringify(aDevice({ serialNumber: 'AT-LIMIT' }));
    const body = json + ' '.repeat(LIMIT - Buffer.byteLength(json));

    const res = await service.request('POST', LIVE, { body, headers: { 'Content-Type': 'application/json' } });

    expect(res.status).toBe(201);
    expect(res.body.serialNumber).toBe('AT-LIMIT');
  });

  it('the service keeps serving after a 413', async () => {
    await service.request('POST', LIVE, { body: 'x'.repeat(LIMIT + 1), headers: { 'Content-Type': 'application/json' } });

    expect((await service.get(LIVE)).status).toBe(200);
  });
});

describe('406: content negotiation', () => {
  it.each(
    READ_ROUTES.flatMap(([name, path]) => [
      [name, path, { Accept: 'text/html' }],
      [name, path, { Accept: 'application/xml' }],
      [name, path, { Accept: 'application/json;odata.metadata=full' }],
      [name, path, { Accept: 'application/json;foo=bar' }],
      [name, path, { Accept: 'application/json;charset=iso-8859-1' }],
    ]),
  )('GET %s with %j → 406 NotAcceptable', async (_name, path, headers) => {
    const res = await service.get(path(), { headers: { ...(headers as Record<string, string>), 'client-request-id': 'accept-1' } });

    expectGraphError(res, 406, 'NotAcceptable', 'accept-1');
  });

  it.each(READ_ROUTES)('GET %s?$format=xml → 406 NotAcceptable', async (_name, path) => {
    const res = await service.get(`${path()}?$format=xml`);

    expectGraphError(res, 406, 'NotAcceptable');
  });

  it.each([
    ['*/*', 'application/json;odata.metadata=minimal'],
    ['application/json', 'application/json;odata.metadata=minimal'],
    ['text/html, application/json;q=0.5', 'application/json;odata.metadata=minimal'],
    ['application/json;odata.metadata=none', 'application/json;odata.metadata=none'],
    ['application/json;charset=utf-8', 'application/json;odata.metadata=minimal;charset=utf-8'],
  ])('Accept: %s is served as %s', async (accept, contentType) => {
    const res = await service.get(LIVE, { headers: { Accept: accept } });

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(contentType);
  });

  it('odata.metadata=none drops @odata.context and @odata.type', async () => {
    const res = await service.get(`${LIVE}/${liveDevice}`, { headers: { Accept: 'application/json;odata.metadata=none' } });

    expect(res.body['@odata.context']).toBeUndefined();
    expect(res.body['@odata.type']).toBeUndefined();
    expect(res.body.id).toBe(liveDevice);
  });

  it('/$count answers 406 for a media type it cannot produce', async () => {
    const res = await service.get(`${LIVE}/$count`, { headers: { Accept: 'application/xml' } });

    expectGraphError(res, 406, 'NotAcceptable');
  });
});

describe('OData-Version and OData-MaxVersion', () => {
  it.each([
    [{ 'OData-Version': '9.9' }],
    [{ 'OData-Version': '5.0' }],
    [{ 'OData-Version': '3.0' }],
    [{ 'OData-Version': 'banana' }],
    [{ 'OData-MaxVersion': '3.0' }],
    [{ 'OData-MaxVersion': '2.0' }],
    [{ 'OData-MaxVersion': 'latest' }],
  ])('%j → 400 BadRequest on every kind of route', async (headers) => {
    for (const path of ['', '$metadata', UPLOADS, `${UPLOADS}/${upload}`, LIVE, DEFAULT_UPLOAD]) {
      const res = await service.get(path, { headers: { ...headers, 'client-request-id': 'version-1' } });

      expectGraphError(res, 400, 'BadRequest', 'version-1');
      expect(res.body.error.target).toBe(Object.keys(headers)[0]);
    }
  });

  it.each([
    [{ 'OData-Version': '4.0' }],
    [{ 'OData-Version': '4.01' }],
    [{ 'OData-MaxVersion': '4.0' }],
    [{ 'OData-MaxVersion': '4.01' }],
    [{ 'OData-MaxVersion': '5.0' }],
  ])('%j is served, answering OData-Version 4.0', async (headers) => {
    const res = await service.get(LIVE, { headers });

    expect(res.status).toBe(200);
    expect(res.headers.get('odata-version')).toBe('4.0');
  });

  it('a write with an unsupported OData-Version changes nothing', async () => {
    const before = (await service.get(`${LIVE}/$count`)).text;

    const res = await service.request('POST', LIVE, { body: aDevice(), headers: { 'OData-Version': '9.9' } });

    expectGraphError(res, 400, 'BadRequest');
    expect((await service.get(`${LIVE}/$count`)).text).toBe(before);
  });
});

describe('request-id and client-request-id', () => {
  const cases: [string, string, () => string, unknown][] = [
    ['200', 'GET', () => LIVE, undefined],
    ['201', 'POST', () => LIVE, aDevice()],
    ['204', 'DELETE', () => `${LIVE}/${doomedDevice}`, undefined],
    ['404', 'GET', () => `${LIVE}/00000000-0000-4000-8000-000000000000`, undefined],
    ['405', 'DELETE', () => LIVE, undefined],
    ['service document', 'GET', () => '', undefined],
    ['$metadata', 'GET', () => '$metadata', undefined],
    ['/health', 'GET', () => '/health', undefined],
  ];

  it.each(cases)('%s: the client-request-id is echoed and request-id is a fresh GUID', async (_name, method, path, body) => {
    const first = await service.request(method, path(), { headers: { 'client-request-id': 'c0ffee00-1111-2222-3333-444455556666' }, ...(body ? { body } : {}) });
    const second = await service.request('GET', path());

    expect(first.headers.get('odata-version')).toBe('4.0');
    expect(first.headers.get('client-request-id')).toBe('c0ffee00-1111-2222-3333-444455556666');
    expect(first.headers.get('request-id')).toMatch(GUID);
    expect(second.headers.get('request-id')).toMatch(GUID);
    expect(second.headers.get('request-id')).not.toBe(first.headers.get('request-id'));
    // Without a client-request-id, the service makes one up (Graph does too).
    expect(second.headers.get('client-request-id')).toBeTruthy();
  });

  it('an error body repeats both ids in innerError', async () => {
    const res = await service.get(`${UPLOADS}/nope`, { headers: { 'client-request-id': 'trace-me' } });

    expectGraphError(res, 404, 'ResourceNotFound', 'trace-me');
    expect(res.body.error.innerError['client-request-id']).toBe('trace-me');
  });
});

describe('malformed URLs', () => {
  it.each([
    [`${UPLOADS}('a'b')`, 400, 'BadRequest'],
    [`${UPLOADS}(abc)`, 400, 'BadRequest'],
    [`${UPLOADS}/%E0%A4%A`, 400, 'BadRequest'],
    // found by test/fuzz.test.ts: keys holding NUL reached PostgreSQL (invalid byte sequence: a 500)
    [`${LIVE}/a%00b`, 400, 'BadRequest'],
    [`${LIVE}('a%00b')`, 400, 'BadRequest'],
    [`${UPLOADS}/a%00b/deviceIdentities`, 400, 'BadRequest'],
    [`${LIVE}?%zz=1`, 400, 'BadRequest'],
    [`${LIVE}?$top=1&$top=2`, 400, 'BadRequest'],
    [`${LIVE}?$nosuch=1`, 400, 'BadRequest'],
    [`${LIVE}/$count/x`, 404, 'ResourceNotFound'],
    [`deviceManagement()`, 404, 'ResourceNotFound'],
    [`deviceManagement('x')`, 404, 'ResourceNotFound'],
    [`${UPLOADS}()`, 404, 'ResourceNotFound'],
    ['/', 404, 'ResourceNotFound'],
    ['/betax', 404, 'ResourceNotFound'],
  ])('GET %s → %d %s', async (path, status, code) => {
    const res = await service.get(path);

    expectGraphError(res, status, code);
  });
});

describe('nothing ever 500s on bad input', () => {
  const BODIES: [string, string][] = [
    ['null', 'null'],
    ['an array', '[1,2]'],
    ['a string', '"text"'],
    ['a number', '42'],
    ['true', 'true'],
    ['unknown properties', '{"nosuch":1}'],
    ['prototype keys', '{"__proto__":{"groupTag":"x"},"constructor":1,"toString":2}'],
    ['a wrong type', '{"groupTag":{"a":1}}'],
    ['state as an array', '{"state":[]}'],
    ['undecodable base64', '{"hardwareIdentifier":"!!!"}'],
    ['an abstract @odata.type', '{"@odata.type":"#microsoft.graph.entity"}'],
    ['an unknown @odata.type', '{"@odata.type":"#microsoft.graph.user"}'],
    ['a non-string @odata.type', '{"@odata.type":5}'],
    ['a delta payload of junk', '{"@context":"#$delta","value":[null,1,"x"]}'],
    ['a delta payload without value', '{"@context":"#$delta"}'],
    ['a value array without @context', '{"value":[{}]}'],
    ['deviceIdentities not an array', '{"deviceIdentities":{}}'],
    ['deviceIdentities of junk', '{"deviceIdentities":[null,1]}'],
    ['import parameter missing', '{}'],
    ['import parameter of junk', '{"importedWindowsAutopilotDeviceIdentities":[1,null,{"nosuch":1}]}'],
    ['a non-string id', '{"id":{"x":1}}'],
    ['huge numbers', '{"state":{"deviceErrorCode":1e400}}'],
    ['deep nesting', `{"state":${'['.repeat(5000)}${']'.repeat(5000)}}`],
    ['deep nesting in objects', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`],
    ['control characters', '{"groupTag":"\\u0000\\u0001"}'],
    // found by test/fuzz.test.ts: the Binary error message turned the value into text, which throws for these (500)
    ['a Binary value of objects without toString', '{"hardwareIdentifier":[{"toString":null}]}'],
    ['a Binary value without toString', '{"hardwareIdentifier":{"toString":null}}'],
    // found by test/fuzz.test.ts: delta entries whose key holds NUL reached PostgreSQL (a 500)
    ['a removed delta entry whose id holds NUL', '{"@context":"#$delta","value":[{"id":"a\\u0000b","@removed":{}}]}'],
    ['a delta entry whose @id holds NUL', '{"@context":"#$delta","value":[{"@id":"x(\'a\\u0000b\')","groupTag":"y"}]}'],
  ];

  it.each(JSON_ROUTES.flatMap(([method, path]) => BODIES.map(([name, body]) => [method, path, name, body] as const)))(
    '%s %s with %s → 2xx or 4xx, never 5xx',
    async (method, path, _name, body) => {
      const res = await service.request(method, path(), { body, headers: { 'Content-Type': 'application/json' } });

      expect(res.status).toBeLessThan(500);
      if (res.status >= 400) expectGraphError(res, res.status, res.body.error.code);
    },
  );

  const QUERIES = [
    '$filter=', '$filter=(((', "$filter=groupTag eq 'x", '$filter=nosuch eq 1', '$filter=toString eq 1', '$filter=state/nosuch eq 1',
    '$filter=state/deviceErrorCode eq 99999999999999999999', '$filter=contains(groupTag,1)', '$filter=groupTag in ()',
    "$filter=hardwareIdentifier eq binary'!!'", '$filter=length(groupTag) eq 1.5e400', "$filter=state/deviceImportStatus eq 'nosuch'",
    '$orderby=nosuch', '$orderby=groupTag sideways', '$select=nosuch', '$select=toString', '$expand=nosuch', '$expand=deviceIdentities($top=x)',
    '$expand=deviceIdentities($filter=((()', '$top=-1', '$top=abc', '$top=99999999999999999', '$skip=x', '$skiptoken=garbage', '$count=maybe',
    '$search=x', '$apply=x', '$levels=1', '%', '$format=application/json;odata.metadata=bogus',
  ];

  it.each(READ_ROUTES.flatMap(([name, path]) => QUERIES.map((q) => [name, path, q] as const)))(
    'GET %s?%s → 2xx or 4xx/501 in Graph shape, never 500',
    async (_name, path, query) => {
      const res = await service.get(`${path()}?${query}`);

      expect(res.status).not.toBe(500);
      expect(res.status === 501 || res.status < 500).toBe(true);
      if (res.status >= 400) expectGraphError(res, res.status, res.body.error.code);
    },
  );
});

describe('requests node’s HTTP parser rejects are answered in Graph shape', () => {
  /** Sends raw bytes and returns what came back, parsed. */
  function raw(bytes: string): Promise<{ status: number; headers: Record<string, string>; body: any }> {
    return new Promise((resolve, reject) => {
      const socket = connect(Number(new URL(service.origin).port), '127.0.0.1');
      let data = '';
      socket.on('data', (c) => (data += c.toString()));
      socket.on('end', () => {
        const [head, body] = data.split('\r\n\r\n');
        const [statusLine, ...lines] = head.split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) });
      });
      socket.on('error', reject);
      socket.write(bytes);
    });
  }

  it.each([
    ['a garbage request line', 'NOT HTTP AT ALL\r\n\r\n', 400, 'BadRequest'],
    ['an invalid header', 'GET /beta HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n', 400, 'BadRequest'],
    ['oversized headers', `GET /beta HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`, 431, 'RequestHeaderFieldsTooLarge'],
    // found by test/fuzz.test.ts: node answered these two itself, with an empty body
    ['no Host header', 'GET /beta HTTP/1.1\r\nConnection: close\r\n\r\n', 400, 'BadRequest'],
    ['an Expect other than 100-continue', 'GET /beta HTTP/1.1\r\nHost: x\r\nExpect: the-impossible\r\nConnection: close\r\n\r\n', 417, 'ExpectationFailed'],
  ])('%s → %d %s', async (_name, bytes, status, code) => {
    const res = await raw(bytes);

    expect(res.status).toBe(status);
    expect(res.headers['odata-version']).toBe('4.0');
    expect(res.headers['request-id']).toMatch(GUID);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.innerError['request-id']).toBe(res.headers['request-id']);
  });

  it('a HEAD with oversized headers → 431 without a body (found by test/fuzz.test.ts)', async () => {
    // act
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(service.origin).port), '127.0.0.1');
      let data = '';
      socket.on('data', (c: Buffer) => (data += c.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
      socket.write(`HEAD /beta HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
    });

    // assert
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 431 /);
    expect(head).toMatch(/\r\nContent-Type: application\/json\r\n/);
    expect(body).toBe('');
  });
});
