import fc from 'fast-check';
import { EntityType, model, StructuralProperty } from '../../src/odata/model';
import { encodeSkipToken, queryFingerprint, SkipToken } from '../../src/odata/paging';

/**
 * Generators of hostile HTTP requests for test/fuzz.test.ts. A generated request is plain data (printable, so
 * fast-check can show a shrunk counterexample): entity keys are references into pools of ids that exist only at run
 * time, resolved when the request is sent.
 */

/** Which entities a key reference points at: scratch (free to change), sentinel (must never change), foreign (another tenant's sentinels). */
export type Owner = 'scratch' | 'sentinel' | 'foreign';
export type Pool = 'upload' | 'contained' | 'live' | 'registered' | 'default';
export interface KeyRef {
  owner: Owner;
  pool: Pool;
  i: number;
  /** For a contained device: its upload's id or its own. */
  field: 'id' | 'upload';
  /** Spellings of one key: case, braces, suffixes. */
  transform: 'none' | 'upper' | 'braces' | 'suffix' | 'space';
}
export type Key = { ref: KeyRef } | { literal: string };
export type KeyForm = 'slash' | 'paren' | 'named' | 'bare';
export type Part = string | { key: Key; form: KeyForm; encoding: Encoding };
export type Encoding = 'minimal' | 'component' | 'double' | 'plus';

export type AuthKind =
  | 'write' | 'app-write' | 'read' | 'foreign-read' | 'none' | 'alg-none' | 'expired' | 'other-secret'
  | 'no-tid' | 'tid-number' | 'tid-long' | 'nbf-future' | 'no-scope';
export type Auth = { kind: AuthKind } | { kind: 'tampered'; segment: 0 | 1 | 2; index: number; xor: number } | { kind: 'raw'; header: string };

export type Body =
  | { kind: 'json'; value: unknown }
  | { kind: 'text'; text: string; type?: string }
  | { kind: 'bytes'; bytes: number[] }
  | { kind: 'nest'; open: string; close: string; depth: number; inner: string }
  | { kind: 'repeat'; head: string; unit: string; times: number; tail: string };

export interface FuzzRequest {
  method: string;
  /** The service root (or something else) the path starts from, e.g. `/beta`. */
  root: string;
  parts: Part[];
  /** Query options as [name, value, encoding]; a name of `null` is a raw fragment sent as is. */
  query: [string | null, string, Encoding][];
  headers: [string, string][];
  auth: Auth;
  body?: Body;
}

/** Methods that may change data. */
export const isWrite = (method: string) => method !== 'GET' && method !== 'HEAD';
/** The caller is the fuzz tenant with write permission. */
export const isValidWriter = (auth: Auth) => auth.kind === 'write' || auth.kind === 'app-write';

/** Strings the leak check looks for in responses; generated data never contains them, so an echo of stored data is no false alarm. */
export const LEAK_MARKERS: RegExp[] = [/SELECT/, /sqlite/i, /syntax error at or near/i, / {3}at /, /\n\s+at /, /QueryFailedError/, /TypeORM/];
const clean = (s: string) => s.replace(/select/gi, 'selekt').replace(/sqlite/gi, 'sqlyte').replace(/syntax error/gi, 'syntax eror').replace(/ {3}at /g, '  at ').replace(/\n(\s+)at /g, '\n$1At ').replace(/typeorm/gi, 'typeorn').replace(/queryfailed/gi, 'queryfayled');

// ---------------------------------------------------------------- values

const ODD_STRINGS = [
  '', ' ', '\u0000', 'a\u0000b', '\u202eRTL\u202c override', '\u200f\u05e9\u05dc\u05d5\u05dd', 'e\u0301\u0302\u0303\u0304\u0305\u0306\u0307',
  'Z\u0351\u0352\u0357\u0358\u035b\u0350\u0351\u0352a\u0300\u0301\u0302l\u0303\u0304go', '\ud800', '\udfff', 'x\ud83d', '\ude00y', '\ud83d\ude00',
  '\ud83d\udc69\u200d\ud83d\udc69\u200d\ud83d\udc67', '\ufeff', '\uffff', '\ufffe', '\u2028\u2029', '\t\r\n', "' OR '1'='1", "'; DROP TABLE x; --",
  '%', '_', '%_%', '\\', '"', "'", "''", '\\u0000', '${x}', '{{x}}', '<script>alert(1)</script>', '../../etc/passwd', 'null', 'undefined',
  'NaN', 'true', '0', '-1', '1e999', '00000000-0000-0000-0000-000000000000', 'SN-0001', 'lab', '\u0130\u0131', 'ß', 'ﬁ', '\u00a0', '\u3000',
];

const longString = fc
  .tuple(fc.constantFrom('x', 'é', '😀', 'e\u0301', '\u202e', "'", '%', '\\'), fc.constantFrom(3999, 4000, 4001, 4002, 4096, 5000, 20000))
  .map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n));

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => `a${String.fromCharCode(c)}b`);

/** Strings a careful client may well send: any Unicode, RTL and combining marks, up to the 4,000-character limit. */
const plainString: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom('lab', 'SN-0001', '\u202eRTL\u202c', 'e\u0301\u0302', '\ud83d\udc69\u200d\ud83d\udc67', "O'Brien", '%_\\', 'x'.repeat(4000), 'é'.repeat(4000)) },
);

export const oddString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  { weight: 4, arbitrary: fc.constantFrom(...ODD_STRINGS) },
  { weight: 1, arbitrary: loneSurrogate },
  { weight: 1, arbitrary: longString },
);

const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2147483648, -2147483649, 1e308, -0, Number.MAX_SAFE_INTEGER + 2, [], {}, [1], { a: 1 }, '', '1', 'true'),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
);

const base64Of = fc.uint8Array({ maxLength: 96 }).map((b) => Buffer.from(b).toString('base64'));
const binaryValue = fc.oneof(
  base64Of,
  base64Of.map((s) => s.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')),
  fc.constantFrom('', '=', '====', 'A', 'AB=', 'A===', '!!!!', 'AAAA AAAA', 'AAAA\nAAAA', 'Binary', 'QUJD\u0000', 'x'.repeat(87_384), 'A'.repeat(87_382)),
);

const dateTimeValue = fc.oneof(
  fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom(
    '0001-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '0000-01-01T00:00:00Z', '2024-02-30T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T24:00:00Z',
    '2024-01-01T00:00:60Z', '2024-01-01', '2024-01-01T00:00:00', '2024-01-01T00:00:00+99:99', '2024-01-01T00:00:00+14:00', '2024-01-01T00:00:00.1234567890123Z',
    '+275760-09-13T00:00:00Z', 'now', '1700000000', '2024-01-01t00:00:00z',
  ),
);

function enumValue(members: string[]): fc.Arbitrary<unknown> {
  return fc.oneof(fc.constantFrom(...members), fc.constantFrom('0', '1', '-1', '99', '2147483648', 'Pending', 'pending,complete', '', 'unknownFutureValue'), fc.integer({ min: -2, max: 8 }));
}

/** A value for the property: in a sane body nearly always one of its type, else often odd or of the wrong type. */
function propertyValue(property: StructuralProperty, depth: number, sane: boolean): fc.Arbitrary<unknown> {
  const type = property.type;
  let right: fc.Arbitrary<unknown>;
  if (type.kind === 'enum') right = sane ? fc.constantFrom(...type.members.keys()) : enumValue([...type.members.keys()]);
  else if (type.kind === 'complex') right = depth > 2 ? fc.constant({}) : complexValue(type.properties, depth + 1, sane);
  else if (type.name === 'Edm.String') right = sane ? plainString : oddString;
  else if (type.name === 'Edm.Int32') right = fc.oneof(fc.integer({ min: -2147483648, max: 2147483647 }), fc.constantFrom(0, 801, 802, 806, 808));
  else if (type.name === 'Edm.Binary') right = sane ? base64Of : binaryValue;
  else right = sane ? fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString()) : dateTimeValue;
  if (property.nullable) right = fc.oneof({ weight: 8, arbitrary: right }, { weight: 1, arbitrary: fc.constant(null) });
  return fc.oneof({ weight: sane ? 60 : 6, arbitrary: right }, { weight: 1, arbitrary: wrongType });
}

const ANNOTATIONS = fc.constantFrom(
  ['@odata.type', '#microsoft.graph.importedWindowsAutopilotDeviceIdentity'], ['@odata.type', 'microsoft.graph.entity'], ['@odata.type', '#graph.importedWindowsAutopilotDeviceIdentityUpload'],
  ['@odata.type', '#microsoft.graph.windowsAutopilotDeviceIdentity'], ['@odata.type', 42], ['@odata.type', '#Microsoft.Graph.Nope'], ['@type', 'x'],
  ['@odata.etag', 'W/"1"'], ['@odata.context', 'x'], ['@odata.id', 'nope'], ['groupTag@odata.type', '#Int32'], ['@removed', { reason: 'deleted' }],
  ['__proto__', { polluted: true }], ['constructor', { prototype: { polluted: true } }], ['toString', 'x'], ['hasOwnProperty', 1], ['', ''], ['id', 'client-id'],
  ['unknownProperty', 1], ['GroupTag', 'case'], ['state/deviceErrorCode', 1], ['tenantId', 'other'], ['version', 99], ['uploadId', null],
) as fc.Arbitrary<[string, unknown]>;

function complexValue(properties: Map<string, StructuralProperty>, depth: number, sane: boolean): fc.Arbitrary<Record<string, unknown>> {
  const entries = [...properties.values()].map((p) => fc.tuple(fc.constant(p.name), propertyValue(p, depth, sane)));
  const annotations = sane ? fc.oneof({ weight: 9, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(ANNOTATIONS, { maxLength: 1 }) }) : fc.array(ANNOTATIONS, { maxLength: 2 });
  return fc
    .tuple(fc.subarray(entries.length ? entries : [fc.tuple(fc.constant('x'), fc.constant(1))]), annotations)
    .chain(([picked, extra]) => fc.tuple(fc.tuple(...picked), fc.constant(extra)))
    .map(([pairs, extra]) => Object.fromEntries([...(pairs), ...extra]));
}

const TYPE = (name: string): EntityType => model().entityTypes.get(`microsoft.graph.${name}`)!;
const DEVICE = 'importedWindowsAutopilotDeviceIdentity';
const UPLOAD = 'importedWindowsAutopilotDeviceIdentityUpload';
const REGISTERED = 'windowsAutopilotDeviceIdentity';
const SETTINGS = 'windowsAutopilotSettings';

/** A reference to a key, replaced by the id at send time (`{"$ref": …}` in a JSON body). */
const keyRefValue = (pool: Pool, sane = false) => keyRef(pool, 'id', sane).map((ref) => ({ $ref: ref }));

/** An entity body of the type, from its CSDL properties: right values, wrong types, odd strings, annotations. */
function entityBody(typeName: string, sane: boolean, pool?: Pool): fc.Arbitrary<Record<string, unknown>> {
  const body = complexValue(TYPE(typeName).properties, 0, sane);
  if (!pool) return body;
  return fc.tuple(body, fc.option(keyRefValue(pool, sane), { nil: undefined, freq: 3 })).map(([b, id]) => (id ? { ...b, id } : b));
}

/** The request bodies of the surface, sane (mostly valid) or hostile. */
function bodies(sane: boolean) {
  const device = entityBody(DEVICE, sane);
  const odd = (weight: number) => ({ weight: sane ? 0 : weight, arbitrary: wrongType });
  const upload = fc
    .tuple(entityBody(UPLOAD, sane), fc.option(fc.oneof({ weight: 5, arbitrary: fc.array(device, { maxLength: 4 }) }, odd(1)), { nil: undefined }))
    .map(([u, devices]) => (devices === undefined ? u : { ...u, deviceIdentities: devices }));
  const importParameters = fc.oneof(
    { weight: 8, arbitrary: fc.array(device, { maxLength: 5 }).map((items) => ({ importedWindowsAutopilotDeviceIdentities: items })) },
    { weight: sane ? 0 : 1, arbitrary: wrongType.map((v) => ({ importedWindowsAutopilotDeviceIdentities: v })) },
    { weight: sane ? 0 : 1, arbitrary: fc.record({ ImportedWindowsAutopilotDeviceIdentities: fc.array(device, { maxLength: 2 }), extra: wrongType }, { requiredKeys: [] }) },
    { weight: sane ? 0 : 1, arbitrary: fc.array(device, { maxLength: 2 }) },
  );
  const actionParameters = fc
    .array(
      fc.tuple(
        fc.constantFrom('userPrincipalName', 'addressableUserName', 'groupTag', 'displayName', 'deviceAccountUpn', 'deviceAccountPassword', 'deviceFriendlyName', 'GROUPTAG', ...(sane ? [] : ['serialNumber', 'id', '@odata.type', 'x'])),
        fc.oneof({ weight: 4, arbitrary: sane ? plainString : oddString }, odd(1)),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => Object.fromEntries(pairs));
  const deltaEntry = (pool: Pool) =>
    fc.oneof(
      entityBody(DEVICE, sane, pool),
      keyRefValue(pool, sane).map((id) => ({ id, '@removed': { reason: 'deleted' } })),
      keyRefValue(pool, sane).map((id) => ({ '@id': id, groupTag: 'delta' })),
      { weight: sane ? 0 : 1, arbitrary: fc.constantFrom({ '@removed': {} }, { id: 5 }, null, 'x', [], { '@odata.removed': { reason: 'changed' }, id: 'nope' }) },
    );
  const delta = (pool: Pool) =>
    fc
      .tuple(
        sane ? fc.constantFrom('#$delta', '$metadata#importedWindowsAutopilotDeviceIdentities/$delta') : fc.constantFrom('#$delta', '$metadata#x/$delta', 'x', 42),
        fc.oneof({ weight: 5, arbitrary: fc.array(deltaEntry(pool), { maxLength: 4 }) }, odd(1)),
        fc.array(ANNOTATIONS, { maxLength: sane ? 0 : 1 }),
      )
      .map(([context, value, extra]) => ({ '@context': context, value, ...Object.fromEntries(extra) }));
  return { device, upload, importParameters, actionParameters, delta, entity: (typeName: string, pool?: Pool) => entityBody(typeName, sane, pool) };
}

const MALFORMED_JSON = [
  '', ' ', '{', '}', '[', '{"groupTag":', '{"groupTag":"x"', '{"groupTag":"x",}', "{'groupTag':'x'}", '{groupTag:"x"}', '{"a":1}{"b":2}', 'null', 'true', '1', '"x"',
  '[]', '[{}]', '{"groupTag":"\\ud800"}', '{"groupTag":"\\u0000"}', '{"groupTag":"\\x41"}', '{"state":{"deviceErrorCode":1e400}}', '{"state":{"deviceErrorCode":NaN}}',
  '{"state":{"deviceErrorCode":Infinity}}', '{"state":{"deviceErrorCode":0x7fffffff}}', '{"groupTag":"a" /* c */}', '{"groupTag":"a"} // c', '{"groupTag": "a",,}',
  '{"groupTag":"x","groupTag":5}', '\u0000', '\ufeff\ufeff{}', '{"__proto__":{"isAdmin":true}}', '{"constructor":{"prototype":{"x":1}}}', '{"":""}', '{"a":"\u0000"}',
  '{"importedWindowsAutopilotDeviceIdentities":[{"groupTag":1}]', '{"value":[{"@removed":{}}],"@context":"#$delta"}', 'undefined', 'NaN', '{"a":.5}', '{"a":+1}', '{"a":01}',
  '{"deviceIdentities":[[[[[]]]]]}', '{"@odata.type":"#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload","deviceIdentities":{}}', '\x7f\x80\xff',
];

const CSV_HEADERS = [
  'Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User', 'Device Serial Number,Windows Product ID,Hardware Hash',
  'device serial number,hardware hash', 'Serial,Hash', '', '"Device Serial Number","Windows Product ID","Hardware Hash"', '\ufeffDevice Serial Number,Windows Product ID,Hardware Hash',
  'Device Serial Number;Windows Product ID;Hardware Hash',
];
const csvCell = fc.oneof(oddString, base64Of, fc.constantFrom('"', '""', '"a', 'a"b', '\n', '\r\n', ',', 'a,b', '=cmd|/c calc', ''));
const csvBody = fc
  .tuple(fc.constantFrom(...CSV_HEADERS), fc.array(fc.array(csvCell, { maxLength: 7 }), { maxLength: 5 }), fc.constantFrom('\n', '\r\n', '\r'))
  .map(([header, rows, eol]) => [header, ...rows.map((cells) => cells.join(','))].join(eol));

export function jsonBody(value: fc.Arbitrary<unknown>): fc.Arbitrary<Body> {
  return value.map((v) => ({ kind: 'json' as const, value: v }));
}

const hostileBody: fc.Arbitrary<Body> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...MALFORMED_JSON).map((text) => ({ kind: 'text' as const, text })) },
  { weight: 2, arbitrary: jsonBody(fc.jsonValue({ maxDepth: 4 })) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((text) => ({ kind: 'text' as const, text })) },
  { weight: 1, arbitrary: fc.array(fc.nat(255), { maxLength: 60 }).map((bytes) => ({ kind: 'bytes' as const, bytes })) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(['[', ']'], ['{"a":', '}'], ['{"state":', '}'], ['{"deviceIdentities":[', ']}'], ['{"value":[', ']}']), fc.constantFrom(1, 2, 63, 64, 65, 100, 1000, 10_000, 100_000), fc.constantFrom('', '1', '{}', '[]', '"x"', 'null'))
      .map(([[open, close], depth, inner]) => ({ kind: 'nest' as const, open, close, depth, inner })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom(['{"groupTag":"', '"}'], ['{"serialNumber":"', '"}'], ['{"hardwareIdentifier":"', '"}'], ['{"importedWindowsAutopilotDeviceIdentities":[', '{}]}'], ['', ''], ['{"a', '":1}']),
        fc.constantFrom('x', 'é', '\\u0000', '{},', 'AAAA', '\\ud800'),
        fc.constantFrom(4001, 70_000, 1_000_000, 4 * 1024 * 1024 + 1),
      )
      .map(([[head, tail], unit, times]) => ({ kind: 'repeat' as const, head, unit, times: Math.ceil(times / unit.length), tail })),
  },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 4 }), wrongType, { maxKeys: 8 }).map((value) => ({ kind: 'json' as const, value })) },
  { weight: 1, arbitrary: fc.constantFrom(2000, 20_000).map((n) => ({ kind: 'json' as const, value: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, i])) })) },
);

// ---------------------------------------------------------------- keys and paths

export const ROOTS = {
  uploads: 'deviceManagement/importedWindowsAutopilotDeviceIdentityUploads',
  live: 'deviceManagement/importedWindowsAutopilotDeviceIdentities',
  registered: 'deviceManagement/windowsAutopilotDeviceIdentities',
  settings: 'deviceManagement/windowsAutopilotSettings',
  defaultUpload: 'importedWindowsAutopilotDeviceIdentityUpload',
};

function keyRef(pool: Pool, field: KeyRef['field'] = 'id', sane = false): fc.Arbitrary<KeyRef> {
  return fc.record({
    owner: sane ? fc.constantFrom<Owner>('scratch', 'scratch', 'scratch', 'scratch', 'scratch', 'scratch', 'sentinel', 'foreign') : fc.constantFrom<Owner>('scratch', 'scratch', 'scratch', 'sentinel', 'foreign'),
    pool: fc.constant(pool),
    i: fc.nat(40),
    field: fc.constant(field),
    transform: sane ? fc.constantFrom<KeyRef['transform']>('none', 'none', 'none', 'none', 'none', 'none', 'upper') : fc.constantFrom<KeyRef['transform']>('none', 'none', 'none', 'none', 'upper', 'braces', 'suffix', 'space'),
  });
}

const MALFORMED_KEYS = [
  '', ' ', "'", "''", "'''", "x'y", "' or '1'='1", '1 or 1=1', 'null', '0', '-1', '*', '..', '.', '$count', '$ref', '$value', 'x'.repeat(5000), '\u0000',
  '%00', '%', '%zz', '%ED%A0%80', '%C0%AF', '/', '\\', '(', ')', '()', "('')", 'a/b', '😀', '\u202e', '{00000000-0000-0000-0000-000000000000}', 'G0000000-0000-0000-0000-000000000000',
  '00000000-0000-0000-0000-000000000000', '00000000000000000000000000000000', "id='x'", 'id=', "id=''", "a='b',c='d'",
];

function key(pool: Pool, field: KeyRef['field'], sane: boolean): fc.Arbitrary<Key> {
  return fc.oneof(
    { weight: sane ? 30 : 7, arbitrary: keyRef(pool, field, sane).map((ref) => ({ ref })) },
    { weight: 1, arbitrary: fc.uuid().map((literal) => ({ literal })) },
    { weight: sane ? 0 : 2, arbitrary: fc.oneof(fc.constantFrom(...MALFORMED_KEYS), oddString).map((literal) => ({ literal })) },
  );
}

function keyPart(pool: Pool, field: KeyRef['field'], sane: boolean): fc.Arbitrary<Part> {
  return fc.record({
    key: key(pool, field, sane),
    form: fc.constantFrom<KeyForm>('slash', 'slash', 'paren', 'named', 'bare'),
    encoding: sane ? fc.constant<Encoding>('component') : fc.constantFrom<Encoding>('component', 'component', 'minimal', 'double'),
  });
}

const operation = (name: string, call: boolean) =>
  fc.constantFrom(name, `microsoft.graph.${name}`, `graph.${name}`, name.toUpperCase(), `${name}()`, `microsoft.graph.${name}()`, call ? `${name}(x=1)` : `${name}('x')`, `${name}(`, `Microsoft.Graph.${name}`);

/** `kind` says which query options make sense there (sane requests send those). */
type Kind = 'devices' | 'device' | 'uploads' | 'upload' | 'registered' | 'registered device' | 'none';
type Template = { name: string; kind: Kind; methods: string[]; parts: fc.Arbitrary<Part[]>; body: fc.Arbitrary<Body | undefined> };

const none = fc.constant(undefined);
const COLLECTION = ['GET', 'POST', 'PATCH'];
const ENTITY = ['GET', 'PATCH', 'PUT', 'DELETE'];

/** The URL surface: every path form, with the methods a client would send there and the bodies they take. */
function templates(sane: boolean): Template[] {
  const b = bodies(sane);
  const k = (pool: Pool, field: KeyRef['field'] = 'id') => keyPart(pool, field, sane);
  const op = (name: string, call: boolean) => (sane ? fc.constantFrom(name, `microsoft.graph.${name}`, ...(call ? [`${name}()`] : [])) : operation(name, call));
  const csv = csvBody.map((text): Body => ({ kind: 'text', text, type: 'text/csv' }));
  return [
    { name: 'uploads', kind: 'uploads', methods: COLLECTION, parts: fc.constant([ROOTS.uploads]), body: jsonBody(b.upload) },
    { name: 'upload', kind: 'upload', methods: ENTITY, parts: k('upload').map((key) => [ROOTS.uploads, key]), body: jsonBody(b.upload) },
    { name: 'contained devices', kind: 'devices', methods: COLLECTION, parts: k('contained', 'upload').map((u) => [ROOTS.uploads, u, 'deviceIdentities']), body: fc.oneof(jsonBody(b.entity(DEVICE, 'contained')), jsonBody(b.delta('contained'))) },
    {
      name: 'contained device', kind: 'device',
      methods: ENTITY,
      // the same entry's upload and device, or (hostile) independent picks
      parts: sane
        ? keyRef('contained', 'id', true).chain((ref) => fc.tuple(fc.constant({ ref: { ...ref, field: 'upload' as const } }), fc.constant({ ref }))).map(([u, d]) => [ROOTS.uploads, { key: u, form: 'slash' as const, encoding: 'component' as const }, 'deviceIdentities', { key: d, form: 'slash' as const, encoding: 'component' as const }])
        : fc.tuple(k('contained', 'upload'), k('contained')).map(([u, d]) => [ROOTS.uploads, u, 'deviceIdentities', d]),
      body: jsonBody(b.device),
    },
    { name: 'contained import', kind: 'none', methods: ['POST'], parts: fc.tuple(k('upload'), op('import', false)).map(([u, o]) => [ROOTS.uploads, u, 'deviceIdentities', o]), body: fc.oneof({ weight: 3, arbitrary: jsonBody(b.importParameters) }, { weight: 1, arbitrary: csv }) },
    { name: 'device stream', kind: 'none', methods: ['GET'], parts: fc.tuple(k('upload'), op('autopilotDeviceStream', true)).map(([u, o]) => [ROOTS.uploads, u, o]), body: none },
    { name: '$count', kind: 'none', methods: ['GET'], parts: fc.constantFrom([ROOTS.uploads, '$count'], [ROOTS.live, '$count'], [ROOTS.registered, '$count'], [ROOTS.defaultUpload, 'deviceIdentities', '$count']), body: none },
    { name: 'contained $count', kind: 'none', methods: ['GET'], parts: k('upload').map((u) => [ROOTS.uploads, u, 'deviceIdentities', '$count']), body: none },
    { name: 'live', kind: 'devices', methods: COLLECTION, parts: fc.constant([ROOTS.live]), body: fc.oneof(jsonBody(b.entity(DEVICE, 'live')), jsonBody(b.delta('live'))) },
    { name: 'live device', kind: 'device', methods: ENTITY, parts: k('live').map((key) => [ROOTS.live, key]), body: jsonBody(b.device) },
    { name: 'live import', kind: 'none', methods: ['POST'], parts: op('import', false).map((o) => [ROOTS.live, o]), body: fc.oneof({ weight: 3, arbitrary: jsonBody(b.importParameters) }, { weight: 1, arbitrary: csv }) },
    { name: 'registered', kind: 'registered', methods: ['GET', 'POST'], parts: fc.constant([ROOTS.registered]), body: jsonBody(b.entity(REGISTERED)) },
    { name: 'registered device', kind: 'registered device', methods: ENTITY, parts: k('registered').map((key) => [ROOTS.registered, key]), body: jsonBody(b.entity(REGISTERED)) },
    {
      name: 'registered action', kind: 'none',
      methods: ['POST'],
      parts: fc
        .tuple(k('registered'), fc.constantFrom('updateDeviceProperties', 'assignUserToDevice', 'unassignUserFromDevice', 'allowNextEnrollment').chain((n) => op(n, false)))
        .map(([key, o]) => [ROOTS.registered, key, o]),
      body: fc.oneof(jsonBody(b.actionParameters), none),
    },
    { name: 'settings', kind: 'none', methods: ['GET', 'PATCH'], parts: fc.constant([ROOTS.settings]), body: jsonBody(b.entity(SETTINGS)) },
    { name: 'settings sync', kind: 'none', methods: ['POST'], parts: op('sync', false).map((o) => [ROOTS.settings, o]), body: fc.oneof(none, jsonBody(fc.constant({}))) },
    { name: 'default upload', kind: 'upload', methods: ['GET', 'PATCH', 'PUT'], parts: fc.constant([ROOTS.defaultUpload]), body: jsonBody(b.upload) },
    { name: 'default devices', kind: 'devices', methods: COLLECTION, parts: fc.constant([ROOTS.defaultUpload, 'deviceIdentities']), body: fc.oneof(jsonBody(b.entity(DEVICE, 'default')), jsonBody(b.delta('default'))) },
    { name: 'default device', kind: 'device', methods: ENTITY, parts: k('default').map((key) => [ROOTS.defaultUpload, 'deviceIdentities', key]), body: jsonBody(b.device) },
    { name: 'default import', kind: 'none', methods: ['POST'], parts: op('import', false).map((o) => [ROOTS.defaultUpload, 'deviceIdentities', o]), body: jsonBody(b.importParameters) },
    { name: 'default stream', kind: 'none', methods: ['GET'], parts: op('autopilotDeviceStream', true).map((o) => [ROOTS.defaultUpload, o]), body: none },
    {
      name: 'service', kind: 'none',
      methods: ['GET'],
      parts: fc.constantFrom([], ['$metadata'], ['$METADATA'], ['$batch'], ['deviceManagement'], ['$count'], ['$entity'], ['$all'], ['$crossjoin(x,y)'], ['$metadata', 'x'], ['deviceManagement', '$ref'], ['deviceManagement', 'nope']),
      body: fc.oneof(none, fc.constantFrom<Body>({ kind: 'text', text: '--batch_1\r\nContent-Type: application/http\r\n\r\nGET x HTTP/1.1\r\n\r\n--batch_1--' }, { kind: 'json', value: { requests: [{ id: '1', method: 'GET', url: '/x' }] } })),
    },
    ...(sane
      ? []
      : [
          {
            name: 'junk path', kind: 'none' as const,
            methods: ['GET', 'POST'],
            parts: fc.array(fc.oneof(fc.constantFrom('deviceManagement', 'deviceIdentities', 'import', '$value', '$ref', '$count', '', '.', '..', '%2F', '%2e%2e', '$filter=x', 'x;y', 'a%00b'), oddString), { minLength: 1, maxLength: 5 }),
            body: fc.oneof(none, hostileBody),
          },
        ]),
  ];
}

/** Path mutations: case changes, empty and dot segments, trailing slashes, an appended segment. */
type Mutation = { kind: 'case' | 'slash' | 'empty' | 'dot' | 'append' | 'encode'; at: number; text: string };
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom<Mutation['kind']>('case', 'slash', 'empty', 'dot', 'append', 'encode'),
  at: fc.nat(5),
  text: fc.oneof(fc.constantFrom('$value', '$ref', '$count', 'x', 'deviceIdentities', '$metadata', 'import'), oddString),
});

function mutate(parts: Part[], mutations: Mutation[]): Part[] {
  const out = [...parts];
  for (const m of mutations) {
    const i = out.length ? m.at % out.length : 0;
    const at = out[i];
    switch (m.kind) {
      case 'case':
        if (typeof at === 'string') out[i] = [...at].map((c, j) => (j % 2 ? c.toUpperCase() : c.toLowerCase())).join('');
        break;
      case 'slash':
        out.push('');
        break;
      case 'empty':
        out.splice(i, 0, '');
        break;
      case 'dot':
        out.splice(i, 0, m.text.length % 2 ? '..' : '.');
        break;
      case 'append':
        out.push(m.text);
        break;
      case 'encode':
        if (typeof at === 'string' && at.length) out[i] = `%${at.charCodeAt(0).toString(16).padStart(2, '0')}${at.slice(1)}`;
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------- query options

const DEVICE_PROPERTIES = [...TYPE(DEVICE).properties.keys()];
const PATHS = [
  ...DEVICE_PROPERTIES, 'state/deviceImportStatus', 'state/deviceErrorCode', 'state/deviceErrorName', 'state/deviceRegistrationId', 'state/nope', 'state/deviceErrorCode/x',
  'createdDateTimeUtc', 'status', 'deviceIdentities', 'displayName', 'enrollmentState', 'syncStatus', 'lastSyncDateTime', 'deviceIdentities/$count',
  'tenantId', 'version', 'uploadId', 'nope', 'GroupTag', 'microsoft.graph.importedWindowsAutopilotDeviceIdentity/groupTag', 'microsoft.graph.entity/id', '$it',
  '$it/groupTag', '$root', '@p', 'id/x', "'id'", 't.groupTag', '"groupTag"',
];

const stringLiteral = oddString.map((s) => `'${s.replace(/'/g, "''")}'`);
const LITERALS = [
  'null', 'true', 'false', 'TRUE', '0', '-0', '1', '-1', '2147483647', '2147483648', '-2147483649', '99999999999999999999', '1.5', '-1.5e10', '1e308', '1e309', 'INF', '-INF',
  'NaN', '0x10', '1L', '1M', '1d', '01', "''", "'", "'''", "'a''b'", "'%'", "'_'", "'\\'", '00000000-0000-0000-0000-000000000000', '2024-01-01', '2024-01-01T00:00:00Z',
  '2024-13-45T99:00:00Z', '0001-01-01T00:00:00Z', '12:00:00', "duration'P1D'", "binary'AAAA'", "binary'!!!'", "X'4C'",
  "microsoft.graph.importedWindowsAutopilotDeviceIdentityImportStatus'pending'", "microsoft.graph.importedWindowsAutopilotDeviceIdentityImportStatus'nope'",
  "Microsoft.Graph.importedWindowsAutopilotDeviceIdentityImportStatus'1'", "'pending'", "geography'POINT(1 2)'", '@p', '$it', '[1,2]', '{"a":1}', '(1,2)', '()',
];
const literal = fc.oneof(fc.constantFrom(...LITERALS), stringLiteral, fc.integer().map(String), fc.double({ noNaN: true }).map(String));
const FUNCTIONS = [
  'contains', 'startswith', 'endswith', 'tolower', 'toupper', 'trim', 'length', 'indexof', 'substring', 'concat', 'year', 'month', 'day', 'hour', 'minute',
  'second', 'now', 'date', 'time', 'round', 'floor', 'ceiling', 'cast', 'isof', 'fractionalseconds', 'totaloffsetminutes', 'matchesPattern', 'geo.distance',
  'sqlite_version', 'randomblob', 'lower', 'CONTAINS', 'hassubset', 'case',
];
const BINARY_OPS = ['eq', 'ne', 'gt', 'ge', 'lt', 'le', 'and', 'or', 'add', 'sub', 'mul', 'div', 'divby', 'mod', 'has', 'in', 'EQ', 'like', '=', '||'];

const { expr } = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', maxDepth: 5 },
    { weight: 3, arbitrary: fc.constantFrom(...PATHS) },
    { weight: 3, arbitrary: literal },
    { weight: 3, arbitrary: fc.tuple(tie('expr'), fc.constantFrom(...BINARY_OPS), tie('expr')).map(([a, op, b]) => `${a} ${op} ${b}`) },
    { weight: 1, arbitrary: tie('expr').map((e) => `not ${e}`) },
    { weight: 1, arbitrary: tie('expr').map((e) => `(${e})`) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...FUNCTIONS), fc.array(tie('expr'), { maxLength: 3 })).map(([f, args]) => `${f}(${args.join(',')})`) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...PATHS), fc.array(literal, { maxLength: 4 })).map(([p, items]) => `${p} in (${items.join(',')})`) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('deviceIdentities', 'state', 'groupTag'), fc.constantFrom('any', 'all'), tie('expr')).map(([p, l, e]) => `${p}/${l}(d:d/${e})`) },
  ),
}));

const HOSTILE_FILTERS = [
  "groupTag eq 'x'' or ''1''=''1'", "groupTag eq 'x' or 1=1", "groupTag eq 'x'; DROP TABLE x; --", "groupTag eq 'x' UNION SELECT id FROM x", "groupTag eq 'x') OR ('1'='1",
  "groupTag eq 'x' --", "groupTag eq 'x' /* */", "groupTag like '%'", "tenantId ne ''", 'randomblob(1000000000) eq null', "groupTag eq char(76)",
  "groupTag eq 'a\u0000b'", "contains(groupTag,'%')", "contains(groupTag,'\\')", "startswith(serialNumber,'_')", "groupTag eq 'x'\nor 1 eq 1",
  "substring(groupTag,-1,-1) eq ''", 'substring(groupTag,2147483647,2147483647) eq null', 'length(groupTag) gt 99999999999999999999', 'indexof(groupTag,null) eq 0',
  "concat(concat(concat(groupTag,groupTag),groupTag),'x') eq 'x'", 'state eq null', 'state/deviceErrorCode eq state/deviceErrorCode', 'hardwareIdentifier gt binary\'AAAA\'',
  'createdDateTimeUtc gt 2024-01-01T00:00:00Z', 'year(createdDateTimeUtc) eq 2024', "deviceIdentities/$count gt 0", "id in ('a','b')", 'id in ()', 'id in (null)',
  "groupTag in ('a', 'b',)", 'true', 'false', 'null', '1', "'x'", 'groupTag', 'not', 'and', 'eq', '(', ')', "'", '', ' ', '$filter', '@p eq 1',
  'state/deviceImportStatus eq 1', "state/deviceImportStatus eq 'pending'", "state/deviceImportStatus has microsoft.graph.importedWindowsAutopilotDeviceIdentityImportStatus'pending'",
  "status eq 'complete'", "tolower(tolower(tolower(tolower(tolower(tolower(tolower(tolower(tolower(tolower(tolower(tolower(tolower(groupTag))))))))))))) eq 'x'",
];

const repeated = fc
  .tuple(fc.constantFrom('(', 'not ', "groupTag eq 'x' or ", 'tolower(', "concat('a',", '-', "id in ('a',"), fc.constantFrom(12, 13, 49, 50, 51, 100, 101, 251, 1000, 3000))
  .map(([unit, n]) => {
    const close = unit.includes('(') ? ')'.repeat(n) : '';
    return unit === '(' ? `${unit.repeat(n)}groupTag eq 'x'${close}` : unit.endsWith('or ') ? `${unit.repeat(n)}true` : unit === "id in ('a'," ? `id in (${Array.from({ length: n }, (_, i) => `'${i}'`).join(',')})` : `${unit.repeat(n)}groupTag${close}${unit.includes('tolower') || unit.includes('concat') || unit === '-' ? " eq 'x'" : ''}`;
  });

export const filterValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: expr },
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_FILTERS) },
  { weight: 1, arbitrary: repeated },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
);

const orderbyValue = fc.oneof(
  fc.array(fc.tuple(fc.oneof(fc.constantFrom(...PATHS), expr), fc.constantFrom('', ' asc', ' desc', ' DESC', ' up', ' asc desc', '  asc')), { minLength: 1, maxLength: 3 }).map((items) => items.map(([p, d]) => `${p}${d}`).join(',')),
  fc.constantFrom('', ',', 'id,', ',id', 'id id', 'id;drop', '1', "'x'", 'null', 'id asc,id desc', Array.from({ length: 200 }, () => 'groupTag').join(','), 'deviceIdentities/$count desc'),
);

const SELECT_ITEMS = [...PATHS, '*', '**', '', ' ', 'id,', 'deviceIdentities($select=id)', 'microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload/status', 'microsoft.graph.nope/id', '@odata.etag', '$ref'];
const selectValue = fc.oneof(fc.array(fc.constantFrom(...SELECT_ITEMS), { minLength: 1, maxLength: 4 }).map((s) => s.join(',')), oddString);

const { expandValue } = fc.letrec<{ expandValue: string; nested: string }>((tie) => ({
  expandValue: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    fc.constantFrom('deviceIdentities', '*', 'DeviceIdentities', 'nope', 'deviceIdentities/x', 'deviceIdentities,deviceIdentities', 'deviceIdentities(', 'deviceIdentities)', 'deviceIdentities()', "deviceIdentities($filter=groupTag eq 'x)", '$ref', 'deviceIdentities/$ref', 'state'),
    fc.array(tie('nested'), { minLength: 1, maxLength: 3 }).map((options) => `deviceIdentities(${options.join(';')})`),
  ),
  nested: fc.oneof(
    filterValue.map((f) => `$filter=${f}`),
    orderbyValue.map((o) => `$orderby=${o}`),
    selectValue.map((s) => `$select=${s}`),
    fc.constantFrom('$top=1', '$top=-1', '$skip=2', '$count=true', '$levels=2', '$levels=max', '$search=x', '$expand=deviceIdentities', '$skiptoken=x', 'x=1', '$top', '$TOP=1', 'top=1', '$apply=x'),
    tie('expandValue').map((e) => `$expand=${e}`),
  ),
}));

const NUMBERS = ['0', '1', '2', '5', '999', '1000', '999999999', '1000000000', '9999999999', '-1', '1.5', '1e3', '0x10', ' 1', '1 ', '+1', '', 'abc', '٣', '１', '00000000001', '9'.repeat(400)];

const skiptokenValue = fc.oneof(
  fc.record(
    {
      k: fc.oneof(oddString, fc.uuid(), wrongType),
      o: fc.oneof(fc.constantFrom(0, 1, -1, 1.5, 2 ** 53 - 1, 2 ** 53, 1e308), wrongType),
      n: fc.oneof(fc.constantFrom(0, 1, -1, 2 ** 53 - 1, 999999999), wrongType),
      q: fc.oneof(fc.constantFrom('', 'x', 'AAAAAAAAAAAA'), fc.string({ maxLength: 12 }), wrongType),
      extra: wrongType,
    },
    { requiredKeys: [] },
  ).map((token) => Buffer.from(JSON.stringify(token)).toString('base64url')),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', '=', 'e30', 'bnVsbA', 'W10', 'x'.repeat(5000), '%%%', 'eyJrIjoiYSJ9', Buffer.from('{"n":0,"q":"x","k":"a","o":0}').toString('base64')),
);

const queryOption: fc.Arbitrary<[string | null, string, Encoding]> = fc.tuple(
  fc.oneof(
    fc.tuple(fc.constantFrom('$filter', 'filter', '$FILTER', '$Filter'), filterValue),
    fc.tuple(fc.constantFrom('$orderby', 'orderby', '$OrderBy'), orderbyValue),
    fc.tuple(fc.constantFrom('$select', 'select', '$SELECT'), selectValue),
    fc.tuple(fc.constantFrom('$expand', 'expand'), expandValue),
    fc.tuple(fc.constantFrom('$top', '$skip', 'top', '$TOP'), fc.constantFrom(...NUMBERS)),
    fc.tuple(fc.constantFrom('$skiptoken', 'skiptoken', '$SkipToken'), skiptokenValue),
    fc.tuple(fc.constantFrom('$count', 'count'), fc.constantFrom('true', 'false', 'TRUE', '1', 'yes', '')),
    fc.tuple(fc.constantFrom('$format'), fc.constantFrom('json', 'xml', 'atom', 'application/json;odata.metadata=full', 'application/json;odata.metadata=none', 'text/csv', '', 'application/json;q=0', 'JSON')),
    fc.tuple(fc.constantFrom('$search', '$apply', '$compute', '$levels', '$deltatoken', '$schemaversion', '$index', '$id', '$nope', '$', '$$filter', 'api-version', '@p', 'x'), oddString),
  ) as fc.Arbitrary<[string, string]>,
  fc.constantFrom<Encoding>('component', 'component', 'minimal', 'plus', 'double'),
).map(([[name, value], encoding]) => [name, value, encoding]);

const rawQueryFragment = fc.constantFrom('&', '&&', '=', '==', '$filter', '$filter=', '%', '%zz', '%ED%A0%80', '?', '#x', '$top=1&$top=2', 'a=%00', "$filter=groupTag%20eq%20'a'&$filter=groupTag%20eq%20'b'", '$filter=a=b=c', ';', '%26', '+');

const queryArb = fc.array(fc.oneof({ weight: 6, arbitrary: queryOption }, { weight: 1, arbitrary: rawQueryFragment.map((raw): [string | null, string, Encoding] => [null, raw, 'minimal']) }), { maxLength: 4 });

const quoted = (v: string) => `'${v.replace(/'/g, "''")}'`;
const DEVICE_STRINGS = ['groupTag', 'serialNumber', 'productKey', 'importId', 'orderIdentifier', 'assignedUserPrincipalName', 'state/deviceRegistrationId', 'state/deviceErrorName'];
const REGISTERED_STRINGS = ['groupTag', 'serialNumber', 'displayName', 'productKey', 'userPrincipalName', 'manufacturer', 'model', 'purchaseOrderIdentifier'];

function stringConditions(properties: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(fc.constantFrom(...properties), fc.constantFrom('eq', 'ne', 'gt', 'lt', 'ge', 'le'), plainString).map(([p, op, v]) => `${p} ${op} ${quoted(v)}`),
    fc.tuple(fc.constantFrom('contains', 'startswith', 'endswith'), fc.constantFrom(...properties), plainString).map(([f, p, v]) => `${f}(${p},${quoted(v)})`),
    fc.tuple(fc.constantFrom(...properties), fc.array(plainString, { minLength: 1, maxLength: 4 })).map(([p, vs]) => `${p} in (${vs.map(quoted).join(',')})`),
    fc.tuple(fc.constantFrom(...properties), fc.constantFrom("eq null", "ne null", "gt ''", 'eq tolower(groupTag)')).map(([p, rest]) => `${p} ${rest}`),
    fc.tuple(fc.constantFrom('length', 'tolower', 'toupper', 'trim'), fc.constantFrom(...properties)).map(([f, p]) => (f === 'length' ? `length(${p}) gt 3` : `${f}(${p}) eq 'lab'`)),
    fc.tuple(fc.constantFrom(...properties), fc.nat(5), fc.nat(5)).map(([p, a, b]) => `substring(${p},${a},${b}) eq 'N-'`),
    fc.array(fc.uuid(), { minLength: 1, maxLength: 5 }).map((ids) => `id in (${ids.map(quoted).join(',')})`),
  );
}

/** Numbers at and past the edges of Edm.Int32 and of JavaScript's safe integers, and fractions. */
const numberLiteral = fc.oneof(
  fc.integer().map(String),
  fc.constantFrom('0', '-0', '2147483647', '2147483648', '-2147483648', '-2147483649', '4294967296', '9007199254740991', '-9007199254740991', '1.5', '-0.5', '0.0', '2147483647.5', '1e3', '1.0E2'),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
);
const integerExpressions = ['state/deviceErrorCode', 'length(groupTag)', "indexof(serialNumber,'-')", 'length(substring(productKey,1))'];

const CONDITIONS: Record<'devices' | 'uploads' | 'registered', fc.Arbitrary<string>> = {
  devices: fc.oneof(
    stringConditions(DEVICE_STRINGS),
    fc.tuple(fc.constantFrom(...integerExpressions), fc.constantFrom('eq', 'ne', 'gt', 'lt', 'ge', 'le'), numberLiteral).map(([e, op, n]) => `${e} ${op} ${n}`),
    fc.tuple(fc.constantFrom(...DEVICE_STRINGS), numberLiteral, fc.option(numberLiteral, { nil: undefined })).map(([p, a, b]) => `substring(${p},${a}${b === undefined ? '' : `,${b}`}) eq 'x'`),
    fc.tuple(fc.constantFrom(...integerExpressions), fc.array(numberLiteral, { minLength: 1, maxLength: 3 })).map(([e, ns]) => `${e} in (${ns.join(',')})`),
    fc.constantFrom('unknown', 'pending', 'partialSuccess', 'complete', 'error').map((status) => `state/deviceImportStatus eq '${status}'`),
    fc.constantFrom('hardwareIdentifier ne null', "hardwareIdentifier eq binary'AAAA'", 'state eq null'),
  ),
  uploads: fc.oneof(
    fc.constantFrom('noUpload', 'pending', 'complete', 'error').map((status) => `status eq '${status}'`),
    fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => `createdDateTimeUtc gt ${d.toISOString()}`),
    fc.tuple(fc.constantFrom('year', 'month', 'day', 'hour', 'minute', 'second'), fc.constantFrom('eq', 'ge', 'lt'), numberLiteral).map(([f, op, n]) => `${f}(createdDateTimeUtc) ${op} ${n}`),
    stringConditions(['id']),
  ),
  registered: fc.oneof(
    stringConditions(REGISTERED_STRINGS),
    fc.constantFrom("enrollmentState eq 'notContacted'", "deploymentProfileAssignmentStatus ne 'notAssigned'", 'lastContactedDateTime gt 2020-01-01T00:00:00Z', "userlessEnrollmentStatus eq 'allowed'"),
  ),
};

function saneFilter(kind: keyof typeof CONDITIONS): fc.Arbitrary<string> {
  const condition = CONDITIONS[kind];
  return fc
    .tuple(condition, fc.array(fc.tuple(fc.constantFrom(' and ', ' or ', ' and not '), condition), { maxLength: 2 }))
    .map(([first, rest]) => first + rest.map(([op, c]) => `${op}(${c})`).join(''));
}

const ORDERBY: Record<'devices' | 'uploads' | 'registered', string[]> = {
  devices: ['groupTag', 'serialNumber desc', 'id', 'state/deviceErrorCode', 'state/deviceImportStatus desc', 'hardwareIdentifier', 'tolower(groupTag) desc', 'length(serialNumber)'],
  uploads: ['createdDateTimeUtc desc', 'status', 'id desc'],
  registered: ['displayName', 'serialNumber desc', 'enrollmentState', 'lastContactedDateTime desc'],
};
const SELECT: Record<'devices' | 'uploads' | 'registered', string[]> = {
  devices: ['id', 'groupTag', 'serialNumber', 'state', 'hardwareIdentifier', 'importId', '*'],
  uploads: ['id', 'status', 'createdDateTimeUtc', 'deviceIdentities'],
  registered: ['id', 'serialNumber', 'displayName', 'enrollmentState', 'groupTag'],
};

const nestedDeviceOptions = fc
  .record(
    {
      $filter: saneFilter('devices'),
      $orderby: fc.subarray(ORDERBY.devices, { minLength: 1, maxLength: 2 }).map((xs) => xs.join(',')),
      $select: fc.subarray(SELECT.devices, { minLength: 1 }).map((xs) => xs.join(',')),
      $top: fc.nat(5).map(String),
      $skip: fc.nat(3).map(String),
      $count: fc.constantFrom('true', 'false'),
    },
    { requiredKeys: [] },
  )
  .map((options) => Object.entries(options).map(([k, v]) => `${k}=${v}`).join(';'));
const saneExpand = fc.oneof(fc.constantFrom('deviceIdentities', '*'), nestedDeviceOptions.map((o) => (o ? `deviceIdentities(${o})` : 'deviceIdentities')));

const maybe = <T>(arb: fc.Arbitrary<T>, freq = 3) => fc.option(arb, { nil: undefined, freq });

/** Options a client would send to this kind of resource, each present or not; now and then a $skiptoken forged for exactly its $filter and $orderby. */
function saneQuery(kind: Kind): fc.Arbitrary<[string | null, string, Encoding][]> {
  if (kind === 'none') return fc.constant([]);
  const set = kind === 'devices' || kind === 'device' ? 'devices' : kind === 'uploads' || kind === 'upload' ? 'uploads' : 'registered';
  const select = maybe(fc.subarray(SELECT[set], { minLength: 1 }).map((xs) => xs.join(',')));
  const expand = set === 'uploads' ? maybe(saneExpand, 2) : fc.constant(undefined);
  const single = kind === 'device' || kind === 'upload' || kind === 'registered device';
  const options = single
    ? fc.record({ $select: select, $expand: expand })
    : fc.record({
        $filter: maybe(saneFilter(set), 2),
        $orderby: maybe(fc.subarray(ORDERBY[set], { minLength: 1, maxLength: 2 }).map((xs) => xs.join(','))),
        $select: select,
        $expand: expand,
        $top: maybe(fc.nat(20).map(String)),
        $skip: maybe(fc.nat(20).map(String), 5),
        $count: maybe(fc.constantFrom('true', 'false')),
        skiptoken: maybe(fc.record({ k: maybe(fc.oneof(fc.uuid(), plainString), 2), o: maybe(fc.nat(1_000_000), 2), n: fc.nat(1000) }), 6),
      });
  return options.map(({ skiptoken, ...rest }: Record<string, unknown>) => {
    const present = Object.entries(rest).filter((entry): entry is [string, string] => entry[1] !== undefined);
    const query: [string | null, string, Encoding][] = present.map(([name, value]) => [name, value, 'component']);
    if (skiptoken) {
      const token = { ...(skiptoken), q: queryFingerprint(rest.$filter as string | undefined, rest.$orderby as string | undefined) };
      query.push(['$skiptoken', encodeSkipToken(token as SkipToken), 'component']);
    }
    return query;
  });
}

const saneHeader: fc.Arbitrary<[string, string]> = fc.constantFrom<[string, string]>(
  ['Accept', 'application/json'], ['Accept', 'application/json;odata.metadata=none'], ['Accept', 'application/json;IEEE754Compatible=true'], ['Prefer', 'return=minimal'],
  ['Prefer', 'odata.maxpagesize=1'], ['Prefer', 'odata.maxpagesize=2'], ['Prefer', 'odata.maxpagesize=3'], ['Prefer', 'return=representation'], ['If-Match', '*'], ['If-None-Match', '*'], ['OData-MaxVersion', '4.0'], ['OData-Version', '4.01'],
  ['client-request-id', 'fuzz-client'], ['ConsistencyLevel', 'eventual'],
);

const saneAuth = fc.constantFrom<Auth>({ kind: 'write' }, { kind: 'write' }, { kind: 'write' }, { kind: 'write' }, { kind: 'app-write' }, { kind: 'read' }, { kind: 'foreign-read' });

// ---------------------------------------------------------------- headers and auth

/** Header values as node's HTTP client accepts them: Latin-1 only (UTF-8 text is sent as its raw bytes). */
const latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1').replace(/[^\t\x20-\x7e\x80-\xff]/g, '?');
const headerText = fc.oneof({ weight: 30, arbitrary: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom(...ODD_STRINGS)) }, { weight: 1, arbitrary: longString }).map(latin1);

const HEADERS: [string, string[]][] = [
  ['Content-Type', ['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-16', 'application/json;odata.metadata=full', 'text/csv', 'text/plain', 'application/xml', 'multipart/mixed; boundary=batch_1', 'application/x-www-form-urlencoded', '', ';', 'application/json;;;', 'application/json; charset="utf-8"', 'APPLICATION/JSON', '*/*', 'application/json, text/csv', 'text/csv;charset=latin1']],
  ['Accept', ['*/*', 'application/json', 'application/json;odata.metadata=none', 'application/json;odata.metadata=full', 'application/json;IEEE754Compatible=true', 'application/json;IEEE754Compatible=maybe', 'text/html', 'application/xml', 'text/plain', 'application/json;q=0', 'application/json;q=abc', '', ',', 'application/json;odata.streaming=true', 'application/*;q=0.1, text/*', '*/*;q=0']],
  ['Prefer', ['return=minimal', 'return=representation', 'odata.maxpagesize=1', 'odata.maxpagesize=0', 'odata.maxpagesize=-1', 'odata.maxpagesize=999999999999', 'maxpagesize=abc', 'odata.track-changes', 'respond-async', 'odata.include-annotations="*"', 'return=minimal, odata.maxpagesize=2', 'wait=100', '', ',', '=', 'return', 'odata.continue-on-error', 'handling=lenient']],
  ['If-Match', ['*', 'W/"1"', '"1"', 'W/"x"', '""', '"', 'W/', '*, W/"1"', 'W/"1", W/"2"', 'W/"999999999999999999999"', 'W/"-1"', 'garbage']],
  ['If-None-Match', ['*', 'W/"1"', '"x"', '', ',']],
  ['OData-MaxVersion', ['4.0', '4.01', '3.0', '5.0', '4', 'abc', '', '99999999999.0', '-4.0', '4.0.1']],
  ['OData-Version', ['4.0', '4.01', '3.0', '2.0', '', 'x', '4.0, 4.01']],
  ['client-request-id', ['x', 'x'.repeat(5000), '00000000-0000-0000-0000-000000000000', '\u00e9']],
  ['Expect', ['100-continue']],
  ['Accept-Charset', ['utf-8', 'iso-8859-1', '*']],
  ['Content-Encoding', ['gzip', 'br', 'identity']],
  ['X-HTTP-Method-Override', ['DELETE', 'PATCH']],
  ['Range', ['bytes=0-1']],
  ['Host', ['example.com', 'evil.example:99999', '[::1]:1', 'a b']],
];

const headerArb: fc.Arbitrary<[string, string]> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...HEADERS).chain(([name, values]) => fc.tuple(fc.constant(name), fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...values) }, { weight: 1, arbitrary: headerText }))) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('X-Fuzz', 'Cookie', 'Origin', 'Referer', 'User-Agent', 'Accept-Language'), headerText) },
);

const authArb: fc.Arbitrary<Auth> = fc.oneof(
  { weight: 14, arbitrary: fc.constantFrom<Auth>({ kind: 'write' }, { kind: 'write' }, { kind: 'app-write' }) },
  { weight: 2, arbitrary: fc.constantFrom<Auth>({ kind: 'read' }, { kind: 'foreign-read' }, { kind: 'no-scope' }) },
  {
    weight: 4,
    arbitrary: fc.constantFrom<Auth>(
      { kind: 'none' }, { kind: 'alg-none' }, { kind: 'expired' }, { kind: 'other-secret' }, { kind: 'no-tid' }, { kind: 'tid-number' }, { kind: 'tid-long' }, { kind: 'nbf-future' },
    ),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tampered' as const), segment: fc.constantFrom<0 | 1 | 2>(0, 1, 2), index: fc.nat(200), xor: fc.integer({ min: 1, max: 255 }) }) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(fc.constantFrom('Bearer', 'Bearer ', 'bearer', 'Basic dXNlcjpwYXNz', 'Bearer a.b', 'Bearer a.b.c', 'Bearer ..', 'Bearer x'.repeat(2000), 'Negotiate x', 'Bearer eyJhbGciOiJub25lIn0.e30.', ''), headerText)
      .map((header) => ({ kind: 'raw' as const, header })),
  },
);

const METHODS = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('GET', 'POST', 'PATCH', 'PUT', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('HEAD', 'OPTIONS', 'MERGE', 'TRACE', 'PROPFIND', 'get', 'FOO', 'PURGE') },
);

const rootArb = fc.oneof({ weight: 30, arbitrary: fc.constant('/beta') }, { weight: 1, arbitrary: fc.constantFrom('/BETA', '/v1.0', '', '/beta/..', '//beta', '/beta%2F', '/health', '/ready', '/Beta', '/betax', '/%62eta', '/beta;x') });

/** Points sentinel references of a write by the fuzz tenant's writer at scratch entities: the sentinels must see no legitimate write. */
function sparingSentinels<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sparingSentinels) as T;
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (v.owner === 'sentinel' && 'pool' in v) return { ...v, owner: 'scratch' } as T;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sparingSentinels(x)])) as T;
  }
  return value;
}

const SANE = templates(true);
const HOSTILE = templates(false);
const BODY_METHODS = new Set(['POST', 'PATCH', 'PUT']);

/** A request a careful client could send, but for the odd value: valid auth, the route's own methods, sane options. */
const saneRequest = fc.constantFrom(...SANE).chain((t) =>
  fc.record({
    method: fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...t.methods) }, { weight: 1, arbitrary: fc.constantFrom('HEAD', 'DELETE', 'PUT') }),
    root: fc.constant('/beta'),
    parts: t.parts,
    query: saneQuery(t.kind),
    headers: fc.array(saneHeader, { maxLength: 2 }),
    auth: saneAuth,
    body: t.body,
  }).map((req) => ({ ...req, body: BODY_METHODS.has(req.method) ? req.body : undefined })),
);

/** A request with anything wrong with it: path, method, options, headers, token, body. */
const hostileRequest = fc.constantFrom(...HOSTILE).chain((t) =>
  fc.record({
    method: METHODS,
    root: rootArb,
    parts: fc.tuple(t.parts, fc.array(mutation, { maxLength: 2 }), fc.nat(9)).map(([parts, muts, dice]) => (dice < 7 ? parts : mutate(parts, muts))),
    query: queryArb,
    headers: fc.array(headerArb, { maxLength: 3 }),
    auth: authArb,
    body: fc.oneof({ weight: 6, arbitrary: t.body }, { weight: 2, arbitrary: hostileBody }, { weight: 1, arbitrary: none }),
  }),
);

/** One generated request (half of them sane, half hostile), printed compactly in counterexamples. */
export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(saneRequest, hostileRequest).map((req) => {
  const request: FuzzRequest = isValidWriter(req.auth) && isWrite(req.method.toUpperCase()) ? sparingSentinels(req) : req;
  return Object.assign(request, { [fc.toStringMethod]: () => describeRequest(request) });
});

// ---------------------------------------------------------------- rendering

function truncate(s: string, n = 160): string {
  return s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s;
}

export function describeRequest(req: FuzzRequest): string {
  const compact = JSON.stringify(
    { ...req, body: req.body },
    (_k, v) => (typeof v === 'string' ? truncate(v) : v),
  );
  return truncate(compact, 1500);
}

/** Percent-encodes text for a URL: `component` as encodeURIComponent (lone surrogates as their raw code unit bytes), `minimal` only what HTTP cannot carry. */
export function encode(text: string, encoding: Encoding): string {
  switch (encoding) {
    case 'component':
      return [...text].map((ch) => (ch.length === 1 && ch.charCodeAt(0) >= 0xd800 && ch.charCodeAt(0) <= 0xdfff ? cesu(ch) : encodeURIComponent(ch))).join('');
    case 'double':
      return encode(encode(text, 'component'), 'component');
    case 'plus':
      return encode(text, 'component').replace(/%20/g, '+');
    case 'minimal':
      return [...text].map((ch) => (/^[\x21-\x7e]$/.test(ch) && ch !== '#' ? ch : ch.length === 1 && ch.charCodeAt(0) >= 0xd800 && ch.charCodeAt(0) <= 0xdfff ? cesu(ch) : encodeURIComponent(ch))).join('');
  }
}

/** A lone surrogate as the three bytes of its code unit (what a naive encoder sends; never valid UTF-8). */
function cesu(ch: string): string {
  const c = ch.charCodeAt(0);
  return [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
}

export { clean as cleanText };
