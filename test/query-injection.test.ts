import { DEVICE_NAMES, DeviceCollectionKind, DeviceName, devicePath, QueryFixture, seedQueryFixture, UPLOAD_NAMES, withIds } from './fixtures/query-seed';
import { query, startService, TestResponse, TestService, UPLOADS } from './support/service';

/**
 * Hostile and malformed query options (SPEC §4: all SQL is parameterised; no stack trace or SQL text reaches a client).
 * Every string answers 400, or 200 with exactly the set OData's own reading of it selects — never more, never a 500,
 * and the data is intact afterwards.
 */
let service: TestService;
let fx: QueryFixture;

beforeAll(async () => {
  service = await startService();
  fx = await seedQueryFixture(service);
});
afterAll(() => service.close());

const ALL = DEVICE_NAMES;
const REJECTED = 400;
/** What a leak of the server's SQL or internals would look like (the client's own text may be echoed). */
const LEAK = /SQLITE|QueryFailedError|TypeORM|t\."|"t"|\.ts:\d+|\n\s+at /;

/** [$filter, 400 or the devices OData's reading of it selects]. */
const HOSTILE_FILTERS: [string, typeof REJECTED | readonly DeviceName[]][] = [
  // classic SQL injection through string literals: quotes are doubled in OData, so these are plain text
  ["groupTag eq 'Lab'' or ''1''=''1'", []],
  ["groupTag eq 'x'' OR tenantId <> '''", []],
  ["concat(groupTag,''' OR ''1''=''1') eq 'x'", []],
  ["groupTag eq 'La\u0000b'", REJECTED],
  ["contains(groupTag,'%')", []],
  ["contains(groupTag,'_')", []],
  ["startswith(serialNumber,'%')", []],
  ["endswith(serialNumber,'%')", []],
  // SQL syntax that is not OData
  ["groupTag eq 'Lab' or 1=1", REJECTED],
  ["groupTag eq 'Lab'; DROP TABLE importedWindowsAutopilotDeviceIdentity; --", REJECTED],
  ["groupTag eq 'Lab' --", REJECTED],
  ["groupTag eq 'Lab' /* comment */", REJECTED],
  ["groupTag eq 'x' UNION SELECT id FROM importedWindowsAutopilotDeviceIdentityUpload", REJECTED],
  ["groupTag eq 'x') OR ('1'='1", REJECTED],
  ["groupTag eq 'Lab')) or ((1 eq 1", REJECTED],
  ["\"groupTag\" eq 'Lab'", REJECTED],
  ['groupTag eq "Lab"', REJECTED],
  ["groupTag eq 'Lab' collate nocase", REJECTED],
  ["groupTag like '%'", REJECTED],
  ["groupTag eq 'Lab' or groupTag is not null", REJECTED],
  ["groupTag eq '\\' or 1=1 --'", REJECTED],
  ["id eq '' or ''=''", REJECTED],
  ["groupTag eq 'Lab'\nor 1 eq 1", REJECTED],
  ["groupTag eq 'Lab' \uff4f\uff52 1 eq 1", REJECTED],
  // double decoding: '%' is data; a decoded %27 must not close a literal, a decoded %20 is no blank
  ["groupTag eq 'Lab'%20or%201%20eq%201", REJECTED],
  ["groupTag eq 'a%27 or 1 eq 1 or groupTag eq %27b'", []],
  ["groupTag eq %27Lab%27", REJECTED],
  ["groupTag eq 'Lab' &$top=1", REJECTED],
  // columns and functions of the database rather than properties of the model
  ["tenantId ne 'default'", REJECTED],
  ['uploadId eq null', REJECTED],
  ['version gt 0', REJECTED],
  ['stateDeviceImportStatus eq 1', REJECTED],
  ["t.groupTag eq 'Lab'", REJECTED],
  ["groupTag eq 'Lab' and sqlite_version() eq '3'", REJECTED],
  ['randomblob(1000000000) eq null', REJECTED],
  ['groupTag eq char(76,97,98)', REJECTED],
  ["groupTag eq X'4C6162'", REJECTED],
  ["tolower(tenantId) eq 'default'", REJECTED],
  // literals out of range or of no OData type
  ['length(groupTag) gt 99999999999999999999', REJECTED],
  ['state/deviceErrorCode eq 0x10', REJECTED],
  ['state/deviceErrorCode eq NaN', REJECTED],
  ["hardwareIdentifier eq binary'AAAA'' or 1 eq 1'", REJECTED],
  ["hardwareIdentifier eq binary'!!!!'", REJECTED],
  ['id eq 1 or id eq id', REJECTED],
  ["createdDateTimeUtc gt 2024-13-45T99:00:00Z", REJECTED],
  // size and depth: refused before they reach the database, or run flat
  ['('.repeat(3000) + "groupTag eq 'Lab'" + ')'.repeat(3000), REJECTED],
  ['not '.repeat(2000) + "groupTag eq 'Lab'", REJECTED],
  [`state/deviceErrorCode in (${Array.from({ length: 251 }, (_, i) => i + 1000).join(',')})`, REJECTED],
  [Array.from({ length: 4 }, (_, k) => `state/deviceErrorCode in (${Array.from({ length: 100 }, (_, i) => i + 1000 * k).join(',')})`).join(' or ') + ' or 1 eq 1', REJECTED],
  ['not (groupTag eq null) and '.repeat(101) + 'true', REJECTED],
  ['('.repeat(20) + "groupTag eq 'Lab'" + ')'.repeat(20), ['alpha']],
  [Array.from({ length: 300 }, (_, i) => `importId eq 'i${i}'`).join(' or ') + " or groupTag eq 'Lab'", ['alpha']],
  [`serialNumber in (${Array.from({ length: 249 }, (_, i) => `'S${i}'`).join(',')}, 'SN-B2')`, ['bravo']],
  // valid OData that selects everything is the correct answer, not a leak
  ["groupTag eq 'Lab' or 1 eq 1", ALL],
  ['serialNumber eq serialNumber', ALL],
];

const KINDS: DeviceCollectionKind[] = ['live', 'contained'];

function namesIn(res: TestResponse, ids: Record<string, string>): string[] {
  const byId = new Map(Object.entries(ids).map(([name, id]) => [id, name]));
  return res.body.value.map((e: { id: string }) => byId.get(e.id) ?? `?${e.id}`).sort();
}

describe.each(KINDS)('hostile $filter on the %s device collection', (kind) => {
  it('has at least 30 hostile strings', () => {
    expect(HOSTILE_FILTERS.length).toBeGreaterThanOrEqual(30);
  });

  it.each(HOSTILE_FILTERS.map(([filter, expected]) => [filter.length > 80 ? `${filter.slice(0, 77)}…` : filter, filter, expected] as const))(
    '%s',
    async (_title, filter, expected) => {
      // act
      const res = await service.get(`${devicePath(fx, kind)}?${query({ $filter: filter, $top: 500 })}`);

      // assert: a 400 in Graph's shape that says nothing about SQL, or exactly the expected devices
      if (expected === REJECTED) {
        expect(res.status).toBe(400);
        expect(res.body.error).toMatchObject({ code: 'BadRequest', target: '$filter', message: expect.any(String) });
        expect(res.body.error.message).not.toMatch(LEAK);
      } else {
        expect(res.status).toBe(200);
        expect(namesIn(res, fx.devices[kind])).toEqual([...expected].sort());
      }
    },
  );
});

describe('a JSON string left open (on which @odata/parser used to loop forever) is a 400 at once', () => {
  it.each([
    ['$filter', '["a', "Syntax error in $filter at position 0 ('[\"a'): the character '[' is not allowed here."],
    ['$filter', 'groupTag eq {"a":"', "Syntax error in $filter at position 12 ('{\"a\":\"'): the character '{' is not allowed here."],
    ['$orderby', 'groupTag, ["a', "Syntax error in $orderby at position 10 ('[\"a'): the character '[' is not allowed here."],
  ])('%s=%s', async (option, value, message) => {
    const res = await service.get(`${devicePath(fx, 'live')}?${query({ [option]: value })}`);

    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'BadRequest', target: option, message });
  });
});

describe('nesting: at the limit of 12 levels the heaviest constructs run; one level more is a 400', () => {
  /** substring(serialNumber,indexof(…,'x')) n times around 'y': two levels each, the deepest SQL per level. */
  const substrings = (n: number) => {
    let f = "'y'";
    for (let i = 0; i < n; i++) f = `substring(serialNumber,indexof(${f},'x'))`;
    return f;
  };

  it.each([
    ['substring/indexof', (extra: number) => `length(${substrings(5 + extra)}) eq 1`],
    ['indexof of two chains', (extra: number) => `indexof(${substrings(5 + extra)},${substrings(4)}) eq 1`],
    ['endswith', (extra: number) => `endswith(serialNumber,${'tolower('.repeat(1 + 2 * extra)}${substrings(5)}${')'.repeat(1 + 2 * extra)})`],
    ['not', (extra: number) => `${'not ('.repeat(11 + extra)}contains(serialNumber,'x')${')'.repeat(11 + extra)}`],
    ['not and or', (extra: number) => `${"not (groupTag eq 'a' or ".repeat(5)}contains(${'tolower('.repeat(1 + extra)}serialNumber${')'.repeat(1 + extra)},'x')${')'.repeat(5)}`],
  ])('%s', async (_shape, expression) => {
    const atLimit = await service.get(`${devicePath(fx, 'live')}?${query({ $filter: expression(0) })}`);
    expect(atLimit.status).toBe(200);
    const deeper = await service.get(`${devicePath(fx, 'live')}?${query({ $filter: expression(1) })}`);
    expect(deeper.status).toBe(400);
    expect(deeper.body.error.message).toContain('nested more than 12 levels');
  });
});

describe('hostile values of the other options', () => {
  const live = () => devicePath(fx, 'live');

  it.each([
    ['$orderby', 'groupTag; DROP TABLE importedWindowsAutopilotDeviceIdentity'],
    ['$orderby', '(SELECT 1)'],
    ['$orderby', 'groupTag desc, (case when 1=1 then id end)'],
    ['$orderby', '20'],
    ['$orderby', "'abc'"],
    ['$orderby', 'tenantId'],
    ['$orderby', 'groupTag collate nocase'],
    ['$select', 'id;drop table x'],
    ['$select', 'id,(select 1)'],
    ['$select', 'tenantId'],
    ['$select', 'id from importedWindowsAutopilotDeviceIdentity'],
    ['$top', '1;DROP TABLE x'],
    ['$top', '1 OR 1=1'],
    ['$skip', '0x10'],
    ['$skip', '-1'],
    ['$count', "true' OR '1'='1"],
    ['$expand', 'x'],
    ['$skiptoken', "' OR 1=1 --"],
  ])('%s=%s answers 400', async (option, value) => {
    const res = await service.get(`${live()}?${query({ [option]: value })}`);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'BadRequest', message: expect.any(String) });
    expect(res.body.error.message).not.toMatch(LEAK);
  });

  it('binds a crafted $skiptoken as data: a 400 or a subset, never more', async () => {
    // arrange: a well-formed token for the unfiltered query whose key is SQL
    const first = await service.get(live(), { headers: { Prefer: 'odata.maxpagesize=2' } });
    const token = JSON.parse(Buffer.from(new URL(first.body['@odata.nextLink']).searchParams.get('$skiptoken')!, 'base64url').toString());
    const crafted = Buffer.from(JSON.stringify({ ...token, k: "' OR 1=1 --" })).toString('base64url');

    // act
    const res = await service.get(`${live()}?$skiptoken=${crafted}`);

    // assert: the key is compared as a string; every id sorts after it, so at most the whole set comes back
    expect(res.status).toBe(200);
    expect(namesIn(res, fx.devices.live)).toEqual([...ALL].sort());
  });

  it.each([
    ["status eq 'pending' or 1=1", REJECTED],
    ["status eq 'pending'' or ''1''=''1'", REJECTED],
    ['createdDateTimeUtc gt 0', REJECTED],
    ["year(createdDateTimeUtc) eq '2024'", REJECTED],
    ['id eq {busy} or tenantId ne null', REJECTED],
    ["id eq '{busy}'' or ''1''=''1'", []],
    ['id eq {busy}', ['busy']],
  ] as const)('uploads: $filter=%s', async (filter, expected) => {
    const res = await service.get(`${UPLOADS}?${query({ $filter: withIds(filter, fx.uploads) })}`);
    if (expected === REJECTED) {
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('BadRequest');
    } else {
      expect(res.status).toBe(200);
      expect(namesIn(res, fx.uploads)).toEqual([...expected].sort());
    }
  });

  it('treats % in string literals as data, never as an escape', async () => {
    // arrange: an upload whose device has %27 (an encoded quote, once decoded) in its serial number
    const upload = await service.request('POST', UPLOADS, { body: { deviceIdentities: [{ serialNumber: 'PCT-%27' }, { serialNumber: 'PCT-plain' }] } });
    expect(upload.status).toBe(201);
    const devices = `${UPLOADS}/${upload.body.id}/deviceIdentities`;
    const ids = Object.fromEntries(upload.body.deviceIdentities.map((d: any) => [d.serialNumber === 'PCT-%27' ? 'pct' : 'plain', d.id]));

    // act / assert
    for (const [filter, expected] of [
      ["serialNumber eq 'PCT-%27'", ['pct']],
      ["contains(serialNumber,'%')", ['pct']],
      ["endswith(serialNumber,'%27')", ['pct']],
      ["serialNumber eq 'PCT-%27 or 1 eq 1 or serialNumber eq %27x'", []],
      ["serialNumber in ('PCT-%27', 'PCT-plain')", ['pct', 'plain']],
    ] as const) {
      const res = await service.get(`${devices}?${query({ $filter: filter })}`);
      expect([filter, res.status, namesIn(res, ids)]).toEqual([filter, 200, [...expected].sort()]);
    }
    expect((await service.request('DELETE', `${UPLOADS}/${upload.body.id}`)).status).toBe(204);
  });

  it('leaves the data intact', async () => {
    for (const kind of ['live', 'contained', 'default'] as DeviceCollectionKind[]) {
      expect((await service.get(`${devicePath(fx, kind)}/$count`)).text).toBe('5');
    }
    expect((await service.get(`${UPLOADS}/$count`)).text).toBe(String(UPLOAD_NAMES.length));
  });
});
