import { Agent, request as httpRequest } from 'node:http';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { mintToken, WRITE_SCOPE } from '../src/auth/tokens';
import { BODY_LIMIT } from '../src/server';
import { splitPath } from '../src/odata/resource-path';
import { aDevice } from './fixtures/devices';
import {
  Auth, Body, cleanText, describeRequest, encode, FuzzRequest, fuzzRequest, isValidWriter, isWrite, Key, KeyRef, LEAK_MARKERS, Owner, Pool, ROOTS,
} from './support/fuzz-requests';
import { startService, TEST_SECRET, TestService } from './support/service';

/**
 * Seeded fuzzing over real HTTP (issue 12): thousands of generated requests — malformed and deep JSON, wrong types,
 * odd Unicode, bad keys and paths on every route, hostile query options, tampered tokens, odd headers — and the
 * properties every one of them must keep: no 5xx (but 501 for what is documented as unsupported), Graph's error
 * body, no stack trace or SQL text, no change to data the request could not legitimately change, and memory that
 * comes back down. FUZZ_SEED=<n> replays a run; FUZZ_RUNS=<n> changes its length (8 requests per run); FUZZ_VERBOSE=1 or 2
 * lists the failures met while shrinking; FUZZ_NO_SHRINK=1 reports the first failing batch as found (quicker triage).
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261128);
const BATCH = 8;
const RUNS = Number(process.env.FUZZ_RUNS ?? 640);
const MIN_REQUESTS = 5000;
/**
 * RSS may grow by this much over the run. The in-memory SQLite database keeps every row the run creates (a few
 * thousand devices with strings up to 4,000 characters: tens of MB), and V8 keeps some heap it grew into for the
 * 4 MB bodies; a leak of anything held per request (bodies, sockets, parsed queries) over 5,000 requests exceeds it.
 */
const RSS_GROWTH_LIMIT_MB = 150;

const FUZZ_TENANT = 'fuzz';
const FOREIGN_TENANT = 'sentinel';

let service: TestService;
const agent = new Agent({ keepAlive: true, maxSockets: BATCH });
const tokens: Record<string, string> = {};
type Entry = { id: string; upload?: string };
const pools: Record<Owner, Record<Pool, Entry[]>> = {
  scratch: { upload: [], contained: [], live: [], registered: [], default: [] },
  sentinel: { upload: [], contained: [], live: [], registered: [], default: [] },
  foreign: { upload: [], contained: [], live: [], registered: [], default: [] },
};

interface Outcome {
  status?: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  error?: string;
}

// ---------------------------------------------------------------- setup

/** An HS256 token with exactly these claims. */
function signed(claims: Record<string, unknown>, secret = TEST_SECRET, expiresAt: number | string = '1h'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime(expiresAt).sign(new TextEncoder().encode(secret));
}

async function mintTokens() {
  const now = Math.floor(Date.now() / 1000);
  tokens.write = await mintToken(TEST_SECRET, { tenant: FUZZ_TENANT, scope: 'write' });
  tokens['app-write'] = await mintToken(TEST_SECRET, { tenant: FUZZ_TENANT, scope: 'write', application: true });
  tokens.read = await mintToken(TEST_SECRET, { tenant: FUZZ_TENANT, scope: 'read' });
  tokens['foreign-read'] = await mintToken(TEST_SECRET, { tenant: FOREIGN_TENANT, scope: 'read' });
  tokens['foreign-write'] = await mintToken(TEST_SECRET, { tenant: FOREIGN_TENANT, scope: 'write' });
  tokens['no-scope'] = await signed({ tid: FUZZ_TENANT });
  tokens.expired = await signed({ tid: FOREIGN_TENANT, scp: WRITE_SCOPE }, TEST_SECRET, now - 60);
  tokens['other-secret'] = await signed({ tid: FOREIGN_TENANT, scp: WRITE_SCOPE }, 'another-secret-0123456789abcdef');
  tokens['no-tid'] = await signed({ scp: WRITE_SCOPE });
  tokens['tid-number'] = await signed({ tid: 42, scp: WRITE_SCOPE });
  tokens['tid-long'] = await signed({ tid: 'x'.repeat(200), scp: WRITE_SCOPE });
  tokens['nbf-future'] = await signed({ tid: FOREIGN_TENANT, scp: WRITE_SCOPE, nbf: now + 3600 }, TEST_SECRET, now + 7200);
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  tokens['alg-none'] = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ tid: FOREIGN_TENANT, scp: WRITE_SCOPE, exp: now + 3600 })}.`;
}

/** The Authorization header of a request, or undefined. Tampered tokens are the foreign tenant's write token with one byte flipped. */
function authorization(auth: Auth): string | undefined {
  switch (auth.kind) {
    case 'none':
      return undefined;
    case 'raw':
      return auth.header;
    case 'tampered': {
      const segments = tokens['foreign-write'].split('.');
      const bytes = Buffer.from(segments[auth.segment], 'base64url');
      bytes[auth.index % bytes.length] ^= auth.xor;
      segments[auth.segment] = bytes.toString('base64url');
      return `Bearer ${segments.join('.')}`;
    }
    default:
      return `Bearer ${tokens[auth.kind]}`;
  }
}

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await service.request(method, path, { headers: { Authorization: `Bearer ${token}` }, body });
  if (res.status >= 300) throw new Error(`setup ${method} ${path} → ${res.status} ${res.text.slice(0, 300)}`);
  return res.body;
}

/** Creates the uploads, devices and registered devices of one tenant; returns them as key pools. */
async function populate(token: string, n: number, tag: string): Promise<Record<Pool, Entry[]>> {
  const out: Record<Pool, Entry[]> = { upload: [], contained: [], live: [], registered: [], default: [] };
  for (let i = 0; i < n; i++) {
    const upload = await call('POST', ROOTS.uploads, token, { deviceIdentities: [aDevice({ serialNumber: `${tag}-U${i}-A` }), aDevice({ serialNumber: `${tag}-U${i}-B`, groupTag: null })] });
    out.upload.push({ id: upload.id });
    for (const d of upload.deviceIdentities) out.contained.push({ id: d.id, upload: upload.id });
    out.live.push({ id: (await call('POST', ROOTS.live, token, aDevice({ serialNumber: `${tag}-L${i}` }))).id });
    out.registered.push({ id: (await call('POST', ROOTS.registered, token, { serialNumber: `${tag}-R${i}`, groupTag: 'lab', displayName: `${tag} ${i}` })).id });
    out.default.push({ id: (await call('POST', `${ROOTS.defaultUpload}/deviceIdentities`, token, aDevice({ serialNumber: `${tag}-D${i}` }))).id });
  }
  return out;
}

/** Everything that must come out of the run unchanged: the sentinels of the fuzz tenant, and all of the foreign tenant. */
async function snapshot(): Promise<Record<string, unknown>> {
  const reads: [string, string][] = [
    ...pools.sentinel.upload.map((e): [string, string] => [`${ROOTS.uploads}/${e.id}?$expand=deviceIdentities`, tokens.write]),
    ...pools.sentinel.contained.map((e): [string, string] => [`${ROOTS.uploads}/${e.upload}/deviceIdentities/${e.id}`, tokens.write]),
    ...pools.sentinel.live.map((e): [string, string] => [`${ROOTS.live}/${e.id}`, tokens.write]),
    ...pools.sentinel.registered.map((e): [string, string] => [`${ROOTS.registered}/${e.id}`, tokens.write]),
    [`${ROOTS.uploads}?$expand=deviceIdentities&$count=true&$top=999`, tokens['foreign-read']],
    [`${ROOTS.live}?$count=true&$top=999`, tokens['foreign-read']],
    [`${ROOTS.registered}?$count=true&$top=999`, tokens['foreign-read']],
    [`${ROOTS.defaultUpload}?$expand=deviceIdentities`, tokens['foreign-read']],
    [ROOTS.settings, tokens['foreign-read']],
  ];
  const out: Record<string, unknown> = {};
  for (const [path, token] of reads) {
    const res = await service.get(path, { headers: { Authorization: `Bearer ${token}` } });
    out[path] = { status: res.status, body: res.body };
  }
  return out;
}

function rssMb(): number {
  return process.memoryUsage().rss / 1024 / 1024;
}

/** A real garbage collection where V8 allows switching it on at run time, else none (jest workers have no --expose-gc). */
function collectGarbage(): void {
  try {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  } catch {
    // no gc available: the settle period has to do
  }
}

/** RSS once the heap has settled: a few collections a moment apart, so V8 has handed back what it no longer uses. */
async function settledRssMb(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return rssMb();
}

// ---------------------------------------------------------------- sending

function resolveKey(key: Key): string {
  if ('literal' in key) return key.literal;
  const ref: KeyRef = key.ref;
  const pool = pools[ref.owner][ref.pool];
  const entry = pool[ref.i % pool.length];
  const value = (ref.field === 'upload' ? entry.upload : entry.id) ?? entry.id;
  switch (ref.transform) {
    case 'upper':
      return value.toUpperCase();
    case 'braces':
      return `{${value}}`;
    case 'suffix':
      return `${value}x`;
    case 'space':
      return ` ${value}`;
    default:
      return value;
  }
}

function renderPath(req: FuzzRequest): string {
  let path = req.root;
  for (const part of req.parts) {
    if (typeof part === 'string') {
      path += `/${encode(part, 'minimal')}`;
      continue;
    }
    const key = resolveKey(part.key);
    const quoted = `'${key.replace(/'/g, "''")}'`;
    if (part.form === 'slash') path += `/${encode(key, part.encoding)}`;
    else if (part.form === 'paren') path += `(${encode(quoted, part.encoding)})`;
    else if (part.form === 'named') path += `(${encode(`id=${quoted}`, part.encoding)})`;
    else path += `(${encode(key, part.encoding)})`;
  }
  const query = req.query.map(([name, value, encoding]) => (name === null ? value : `${encode(name, encoding)}=${encode(value, encoding)}`)).join('&');
  return query ? `${path}?${query}` : path;
}

/** `{"$ref": KeyRef}` markers in a JSON body become the ids they point at. */
function resolveRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(resolveRefs);
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if ('$ref' in v && Object.keys(v).length === 1 && typeof v.$ref === 'object') return resolveKey({ ref: v.$ref as KeyRef });
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveRefs(x)]));
  }
  return value;
}

function renderBody(body: Body): Buffer {
  switch (body.kind) {
    case 'json':
      return Buffer.from(cleanText(JSON.stringify(resolveRefs(body.value)) ?? 'null'));
    case 'text':
      return Buffer.from(cleanText(body.text));
    case 'bytes':
      return Buffer.from(body.bytes);
    case 'nest':
      return Buffer.from(body.open.repeat(body.depth) + body.inner + body.close.repeat(body.depth));
    case 'repeat':
      return Buffer.from(body.head + body.unit.repeat(body.times) + body.tail);
  }
}

interface Exchange {
  outcome: Outcome;
  path: string;
  /** Everything the request carried, decoded once and twice: what the response may echo without leaking anything. */
  sent: string;
  bodySize: number;
  headers: string[];
}

function decodedForms(text: string): string[] {
  const forms = [text, text.replace(/\+/g, ' ')];
  for (let i = 0; i < 2; i++) {
    try {
      forms.push(decodeURIComponent(forms[forms.length - 1]));
    } catch {
      break;
    }
  }
  return forms;
}

/** One HTTP exchange on the shared keep-alive agent; transport failures come back as `error`, never thrown. */
function exchange(method: string, path: string, headers: string[], body?: Buffer): Promise<Exchange> {
  const sent = [...decodedForms(path), headers.join('\n'), body && body.length < 1e6 ? body.toString('utf8') : ''].join('\n');
  const url = new URL(service.origin);
  return new Promise((resolve) => {
    const done = (outcome: Outcome) => resolve({ outcome, path, sent, bodySize: body?.length ?? 0, headers });
    let r;
    try {
      r = httpRequest({ host: url.hostname, port: url.port, method, path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => done({ headers: {}, text: '', error: String(err) }));
      });
    } catch (err) {
      // node's client refuses to send it (an invalid header or path): nothing reached the server
      return done({ headers: {}, text: '', error: `client: ${(err as Error).message}` });
    }
    r.setTimeout(60_000, () => r.destroy(new Error('no answer within 60 s')));
    r.on('error', (err: NodeJS.ErrnoException) => done({ headers: {}, text: '', error: `${err.code ?? ''} ${err.message}` }));
    r.end(body);
  });
}

function send(req: FuzzRequest): Promise<Exchange> {
  const path = renderPath(req);
  const body = req.body ? renderBody(req.body) : undefined;
  // Raw header lists (duplicates allowed) get no Host from node's client: add it unless the request brings its own.
  const headers: string[] = req.headers.some(([name]) => name.toLowerCase() === 'host') ? [] : ['Host', new URL(service.origin).host];
  for (const [name, value] of req.headers) headers.push(name, value);
  const auth = authorization(req.auth);
  if (auth !== undefined) headers.push('Authorization', auth);
  if (body && !req.headers.some(([name]) => name.toLowerCase() === 'content-type')) {
    headers.push('Content-Type', req.body?.kind === 'text' && req.body.type ? req.body.type : 'application/json');
  }
  // node's client sends the body of a GET, HEAD or DELETE unframed unless told its length: frame every body.
  if (body) headers.push('Content-Length', String(body.length));
  return exchange(req.method, path, headers, body);
}

/**
 * A page with an @odata.nextLink is followed, as given and with one character of its $skiptoken changed: paging
 * with real tokens, and with tokens close to real ones. Same headers, minus the body's.
 */
function followUps(result: Exchange): Promise<Exchange>[] {
  if (result.outcome.status !== 200) return [];
  let next: unknown;
  try {
    next = JSON.parse(result.outcome.text)['@odata.nextLink'];
  } catch {
    return [];
  }
  if (typeof next !== 'string') return [];
  const url = new URL(next);
  const path = `${url.pathname}${url.search}`;
  const headers: string[] = [];
  for (let i = 0; i < result.headers.length; i += 2) {
    if (!/^content-(type|length)$/i.test(result.headers[i])) headers.push(result.headers[i], result.headers[i + 1]);
  }
  const token = /([?&]\$skiptoken=)([^&]+)/.exec(path);
  const tampered = token
    ? path.replace(token[0], `${token[1]}${token[2].slice(0, token[2].length >> 1)}${token[2][token[2].length >> 1] === 'A' ? 'B' : 'A'}${token[2].slice((token[2].length >> 1) + 1)}`)
    : undefined;
  return [exchange('GET', path, headers), ...(tampered ? [exchange('GET', tampered, headers)] : [])];
}

// ---------------------------------------------------------------- properties

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const GRAPH_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/;
const INVALID_AUTH = new Set(['none', 'alg-none', 'expired', 'other-secret', 'no-tid', 'tid-number', 'tid-long', 'nbf-future', 'tampered', 'raw']);

/** Service document, $metadata, /health and /ready: served to anyone. */
function isPublic(path: string): boolean {
  const pathname = path.split('?')[0];
  if (pathname === '/health' || pathname === '/ready') return true;
  if (pathname !== '/beta' && !pathname.startsWith('/beta/')) return false;
  try {
    const segments = splitPath(pathname.slice('/beta'.length));
    return segments.length === 0 || (segments.length === 1 && segments[0].toLowerCase() === '$metadata');
  } catch {
    return false;
  }
}

/** Every violated property of one exchange, as text (empty when it kept them all). */
function violations(req: FuzzRequest, path: string, sent: string, bodySize: number, outcome: Outcome): string[] {
  const problems: string[] = [];
  if (outcome.status === undefined) {
    // An oversized body may be cut off by the server's 413 before the client finished writing it.
    if (bodySize > BODY_LIMIT && /EPIPE|ECONNRESET/.test(outcome.error ?? '')) return [];
    if (outcome.error?.startsWith('client:')) return [];
    return [`no response: ${outcome.error}`];
  }
  const status = outcome.status;
  const method = req.method.toUpperCase();
  let json: any;
  try {
    json = outcome.text ? JSON.parse(outcome.text) : undefined;
  } catch {
    json = undefined;
  }
  if (status >= 500 && !(status === 501 && (method === 'HEAD' || json?.error?.code === 'NotImplemented'))) problems.push(`status ${status}`);
  if (status === 429 || status === 503) problems.push(`status ${status} with throttling off`);
  if (/^application\/json/.test(String(outcome.headers['content-type'] ?? '')) && outcome.text && json === undefined) problems.push('a JSON Content-Type on a body that is not JSON');
  if (status >= 400 && method !== 'HEAD') {
    const contentType = String(outcome.headers['content-type'] ?? '');
    if (!/^application\/json(;|$)/.test(contentType)) problems.push(`error Content-Type '${contentType}'`);
    const error = json?.error;
    if (!json || Object.keys(json).join() !== 'error' || !error || typeof error !== 'object') problems.push('error body is not {"error":{…}}');
    else {
      const { code, message, target, details, innerError, ...rest } = error;
      if (typeof code !== 'string' || !code) problems.push('error.code missing');
      if (typeof message !== 'string' || !message) problems.push('error.message missing');
      if (target !== undefined && typeof target !== 'string') problems.push('error.target not a string');
      if (details !== undefined && !Array.isArray(details)) problems.push('error.details not an array');
      if (Object.keys(rest).length) problems.push(`unexpected error members ${Object.keys(rest).join(', ')}`);
      const inner = innerError ?? {};
      if (Object.keys(inner).sort().join() !== 'client-request-id,date,request-id') problems.push(`innerError members ${Object.keys(inner).join(', ')}`);
      if (!GRAPH_DATE.test(inner.date ?? '')) problems.push(`innerError.date ${inner.date}`);
      if (!GUID.test(inner['request-id'] ?? '') || inner['request-id'] !== outcome.headers['request-id']) problems.push('innerError.request-id is not the request-id header');
      if (typeof inner['client-request-id'] !== 'string' || !inner['client-request-id']) problems.push('innerError.client-request-id missing');
    }
  }
  for (const marker of LEAK_MARKERS) {
    if (marker.test(outcome.text) && !marker.test(sent)) problems.push(`leak ${marker}: ${outcome.text.slice(0, 300)}`);
  }
  const twoHundred = status >= 200 && status < 300;
  if (twoHundred && INVALID_AUTH.has(req.auth.kind) && !isPublic(path)) problems.push(`${status} for a request with an invalid token (${req.auth.kind})`);
  if (twoHundred && isWrite(method) && !isValidWriter(req.auth) && !isPublic(path)) problems.push(`${status} for a write without write permission (${req.auth.kind})`);
  return problems;
}

/** New entities a valid write created become scratch keys for later requests (in request order: runs replay alike). */
function harvest(req: FuzzRequest, outcome: Outcome): void {
  if (!isValidWriter(req.auth) || outcome.status !== 201) return;
  let body: any;
  try {
    body = JSON.parse(outcome.text);
  } catch {
    return;
  }
  const context: string = body?.['@odata.context'] ?? '';
  if (typeof body?.id !== 'string') return;
  const add = (pool: Pool, entry: Entry) => {
    const list = pools.scratch[pool];
    list.push(entry);
    if (list.length > 200) list.shift();
  };
  if (/importedWindowsAutopilotDeviceIdentityUploads\/\$entity$/.test(context)) {
    add('upload', { id: body.id });
    for (const d of body.deviceIdentities ?? []) add('contained', { id: d.id, upload: body.id });
  } else {
    const contained = /importedWindowsAutopilotDeviceIdentityUploads\('([^']+)'\)\/deviceIdentities\/\$entity$/.exec(context);
    if (contained) add('contained', { id: body.id, upload: contained[1] });
    else if (/deviceManagement\/importedWindowsAutopilotDeviceIdentities\/\$entity$/.test(context)) add('live', { id: body.id });
    else if (/windowsAutopilotDeviceIdentities\/\$entity$/.test(context)) add('registered', { id: body.id });
    else if (/importedWindowsAutopilotDeviceIdentityUpload\/deviceIdentities\/\$entity$/.test(context)) add('default', { id: body.id });
  }
}

// ---------------------------------------------------------------- the run

beforeAll(async () => {
  service = await startService({ SYNC_MIN_INTERVAL_S: '0', SYNC_DURATION_MS: '0' });
  await mintTokens();
  pools.scratch = await populate(tokens.write, 6, 'SCRATCH');
  const sentinels = await populate(tokens.write, 1, 'SENTINEL');
  // The fuzz tenant's default upload is a legitimate target of writes: its devices are not sentinels.
  pools.sentinel = { ...sentinels, default: sentinels.contained };
  pools.foreign = await populate(tokens['foreign-write'], 2, 'FOREIGN');
}, 60_000);

afterAll(async () => {
  agent.destroy();
  await service.close();
});

it(`keeps its properties under ${RUNS * BATCH} generated requests (seed ${SEED})`, async () => {
  // arrange
  const before = await snapshot();
  const baselineMb = await settledRssMb();
  let requests = 0;
  const statuses = new Map<number, number>();

  // act: batches of 8 concurrent requests; a violation fails the run, and fast-check shrinks the batch
  await fc.assert(
    fc.asyncProperty(fc.array(fuzzRequest, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
      const results = await Promise.all(batch.map(send));
      const follow = await Promise.all(results.map((result) => Promise.all(followUps(result))));
      const failures: string[] = [];
      const check = (req: FuzzRequest, { outcome, path, sent, bodySize }: Exchange) => {
        requests++;
        statuses.set(outcome.status ?? 0, (statuses.get(outcome.status ?? 0) ?? 0) + 1);
        const problems = violations(req, path, sent, bodySize, outcome);
        if (problems.length) {
          failures.push(`${req.method} ${path.slice(0, 300)} → ${outcome.status ?? outcome.error}: ${problems.join('; ')}\n  request: ${describeRequest(req)}\n  response: ${outcome.text.slice(0, 500)}`);
        }
      };
      results.forEach((result, i) => {
        harvest(batch[i], result.outcome);
        check(batch[i], result);
        for (const page of follow[i]) check({ ...batch[i], method: 'GET', body: undefined }, page);
      });
      if (failures.length) throw new Error(failures.join('\n'));
    }),
    { seed: SEED, numRuns: RUNS, verbose: Number(process.env.FUZZ_VERBOSE ?? 0), endOnFailure: process.env.FUZZ_NO_SHRINK === '1' },
  );

  // assert: still serving, sentinels untouched, memory back near where it was
  const health = await service.get('/health');
  const afterMb = await settledRssMb();
  const after = await snapshot();
  console.log(
    `fuzz: seed ${SEED}, ${requests} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; ` +
      `RSS ${baselineMb.toFixed(0)} MB before, ${afterMb.toFixed(0)} MB after`,
  );
  expect(requests).toBeGreaterThanOrEqual(MIN_REQUESTS);
  expect(health.status).toBe(200);
  expect(service.app.server.listening).toBe(true);
  expect(after).toEqual(before);
  expect(afterMb).toBeLessThan(baselineMb + RSS_GROWTH_LIMIT_MB);
}, 15 * 60_000);
