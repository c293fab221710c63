import { DataSource } from 'typeorm';
import { queryFingerprint } from '../src/odata/paging';
import { DEFAULT_UPLOAD, LIVE, query, startService, TestResponse, TestService, UPLOADS } from './support/service';

/**
 * Server-driven paging (OData 4.01 Part 1 §11.2.6.7, SPEC §4): 100 per page by default, `Prefer: odata.maxpagesize`
 * honoured and reported, an absolute @odata.nextLink with an opaque $skiptoken on a stable key order, none on the last
 * page, and @odata.count the total of the filtered set on every page. Each collection kind holds 1,000 devices.
 */
let service: TestService;
let uploadId: string;
/** Serial number → id, per collection path. */
const created = new Map<string, Map<string, string>>();

const COLORS = ['red', 'green', 'blue', null] as const;
/** Device i (1…1000): serial SN-0001…SN-1000, group tag by i mod 4. */
const device = (i: number) => ({ serialNumber: `SN-${String(i).padStart(4, '0')}`, groupTag: COLORS[i % 4], productKey: `PK-${i}` });
const DEVICES = Array.from({ length: 1000 }, (_, k) => device(k + 1));

const collections: [string, () => string][] = [
  ['contained (S1)', () => `${UPLOADS}/${uploadId}/deviceIdentities`],
  ['default upload (S2)', () => `${DEFAULT_UPLOAD}/deviceIdentities`],
  ['live', () => LIVE],
];

beforeAll(async () => {
  service = await startService();
  const upload = await service.request('POST', UPLOADS, { body: {} });
  uploadId = upload.body.id;
  for (const [, path] of collections) {
    const res = await service.request('POST', `${path()}/import`, { body: { importedWindowsAutopilotDeviceIdentities: DEVICES } });
    expect(res.status).toBe(200);
    created.set(path(), new Map(res.body.value.map((d: { serialNumber: string; id: string }) => [d.serialNumber, d.id])));
  }
}, 60000);
afterAll(() => service.close());

/** Follows @odata.nextLink from `first` to the end; every page is checked for the paging invariants. */
async function walk(first: string, headers: Record<string, string> = {}): Promise<{ pages: TestResponse[]; ids: string[] }> {
  const pages: TestResponse[] = [];
  let url: string | undefined = first;
  while (url) {
    const res = await service.get(url, { headers });
    expect(res.status).toBe(200);
    pages.push(res);
    url = res.body['@odata.nextLink'];
    if (url) {
      expect(url.startsWith(`${service.root}/`)).toBe(true);
      expect(new URL(url).searchParams.get('$skiptoken')).toMatch(/^[A-Za-z0-9_-]+$/);
    }
    expect(pages.length).toBeLessThan(1100);
  }
  return { pages, ids: pages.flatMap((p) => p.body.value.map((e: { id: string }) => e.id)) };
}

const sizes = (pages: TestResponse[]) => pages.map((p) => p.body.value.length);
const idsOf = (path: string, keep: (d: ReturnType<typeof device>) => boolean = () => true) =>
  DEVICES.filter(keep).map((d) => created.get(path)!.get(d.serialNumber)!);

describe.each(collections)('paging the %s collection of 1,000 devices', (_name, pathOf) => {
  let path: string;
  beforeAll(() => {
    path = pathOf();
  });

  it('pages 100 at a time by default and returns each device exactly once', async () => {
    // act
    const { pages, ids } = await walk(path);

    // assert
    expect(sizes(pages)).toEqual(Array(10).fill(100));
    expect(pages[0].headers.get('preference-applied')).toBeNull();
    expect(pages[9].body['@odata.nextLink']).toBeUndefined();
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()).toEqual(idsOf(path).sort());
  });

  it.each([
    ['odata.maxpagesize=7', 7],
    ['maxpagesize=150', 150],
    ['odata.maxpagesize=250', 250],
    ['odata.maxpagesize=500', 500],
  ])('honours Prefer: %s and says so in Preference-Applied', async (prefer, size) => {
    // act
    const { pages, ids } = await walk(path, { Prefer: prefer });

    // assert: full pages, then the rest; no nextLink on the last page, even when it is full
    const full = Math.floor(1000 / size);
    const expected = [...Array(full).fill(size), ...(1000 % size ? [1000 % size] : [])];
    expect(sizes(pages)).toEqual(expected);
    for (const page of pages) expect(page.headers.get('preference-applied')).toBe(`odata.maxpagesize=${size}`);
    expect(ids).toHaveLength(1000);
    expect(new Set(ids).size).toBe(1000);
  });

  it('pages at the service maximum (999) when the preference asks for more', async () => {
    const { pages } = await walk(path, { Prefer: 'odata.maxpagesize=5000' });
    expect(sizes(pages)).toEqual([999, 1]);
    expect(pages[0].headers.get('preference-applied')).toBe('odata.maxpagesize=999');
  });

  it('pages a filtered, counted set: @odata.count is the filtered total on every page', async () => {
    const { pages, ids } = await walk(`${path}?${query({ $filter: "groupTag eq 'red'", $count: 'true' })}`, { Prefer: 'odata.maxpagesize=40' });
    expect(sizes(pages)).toEqual([40, 40, 40, 40, 40, 40, 10]);
    for (const page of pages) expect(page.body['@odata.count']).toBe(250);
    expect([...ids].sort()).toEqual(idsOf(path, (d) => d.groupTag === 'red').sort());
  });

  it('pages in $orderby order on several keys, ties broken by the key', async () => {
    // act
    const { pages, ids } = await walk(`${path}?${query({ $orderby: 'groupTag desc,productKey' })}`, { Prefer: 'odata.maxpagesize=150' });

    // assert: the concatenated pages are the whole collection in exactly that order
    expect(sizes(pages)).toEqual([150, 150, 150, 150, 150, 150, 100]);
    const order = (color: string | null) => COLORS.map((c): string => c ?? '').sort().reverse().indexOf(color ?? '');
    const expected = [...DEVICES].sort((a, b) => order(a.groupTag) - order(b.groupTag) || (a.productKey < b.productKey ? -1 : 1));
    expect(ids).toEqual(expected.map((d) => created.get(path)!.get(d.serialNumber)));
  });

  it('keeps $top across pages and stops there', async () => {
    const { pages, ids } = await walk(`${path}?${query({ $top: 250, $orderby: 'serialNumber' })}`);
    expect(sizes(pages)).toEqual([100, 100, 50]);
    expect(ids).toEqual(idsOf(path).slice(0, 250));
  });

  it('applies $skip once, on the first page', async () => {
    const { pages, ids } = await walk(`${path}?${query({ $skip: 990, $orderby: 'serialNumber' })}`, { Prefer: 'odata.maxpagesize=4' });
    expect(sizes(pages)).toEqual([4, 4, 2]);
    expect(ids).toEqual(idsOf(path).slice(990));
    expect(pages[0].body['@odata.nextLink']).not.toMatch(/\$skip=/);
  });

  it('keeps the other options in the nextLink and answers no nextLink when all fits', async () => {
    // act
    const first = await service.get(`${path}?${query({ $select: 'serialNumber', $filter: "startswith(serialNumber,'SN-00')", custom: 'kept' })}`, {
      headers: { Prefer: 'odata.maxpagesize=60' },
    });
    const last = await service.get(`${path}?${query({ $filter: "startswith(serialNumber,'SN-00')" })}`);

    // assert: 99 devices match (SN-0001…SN-0099)
    const next = new URL(first.body['@odata.nextLink']);
    expect(next.origin + next.pathname).toBe(`${service.root}/${path}`.replace(/'/g, '%27'));
    expect(next.searchParams.get('$select')).toBe('serialNumber');
    expect(next.searchParams.get('$filter')).toBe("startswith(serialNumber,'SN-00')");
    expect(next.searchParams.get('custom')).toBe('kept');
    expect(Object.keys(first.body.value[0]).filter((k) => !k.startsWith('@'))).toEqual(['id', 'serialNumber']);
    expect(last.body.value).toHaveLength(99);
    expect(last.body['@odata.nextLink']).toBeUndefined();
  });
});

describe('the $skiptoken', () => {
  async function firstLink(options: Record<string, string> = {}): Promise<string> {
    const res = await service.get(`${LIVE}?${query(options)}`, { headers: { Prefer: 'odata.maxpagesize=10' } });
    return res.body['@odata.nextLink'];
  }

  it('is refused for another $filter or $orderby than it was issued for', async () => {
    // arrange
    const token = new URL(await firstLink({ $filter: "groupTag eq 'red'" })).searchParams.get('$skiptoken')!;

    // act / assert
    const others: Record<string, string>[] = [{}, { $filter: "groupTag eq 'blue'" }, { $filter: "groupTag eq 'red'", $orderby: 'serialNumber' }];
    for (const options of others) {
      const res = await service.get(`${LIVE}?${query({ ...options, $skiptoken: token })}`);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'BadRequest', target: '$skiptoken' });
    }
    const same = await service.get(`${LIVE}?${query({ $filter: "groupTag eq 'red'", $skiptoken: token, $select: 'id' })}`);
    expect(same.status).toBe(200);
  });

  it.each([
    ['not base64 JSON', 'not-a-token'],
    ['JSON that is no token', Buffer.from('{"a":1}').toString('base64url')],
    ['a negative offset', Buffer.from('{"o":-1,"n":0,"q":"x"}').toString('base64url')],
    ['an array', Buffer.from('[1,2]').toString('base64url')],
    ['empty', ''],
    // found by test/fuzz.test.ts: a key holding NUL reached PostgreSQL (invalid byte sequence: a 500)
    ['a key holding NUL, for this very query', Buffer.from(JSON.stringify({ k: 'a\u0000b', n: 0, q: queryFingerprint(undefined, undefined) })).toString('base64url')],
  ])('answers 400 for %s', async (_what, token) => {
    const res = await service.get(`${LIVE}?$skiptoken=${token}`);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'BadRequest', target: '$skiptoken' });
  });

  it('walks a stable key order: deleting and adding devices mid-walk skips and repeats none of the others', async () => {
    // arrange: a collection of its own, 300 devices
    const upload = await service.request('POST', UPLOADS, { body: { deviceIdentities: DEVICES.slice(0, 300) } });
    const path = `${UPLOADS}/${upload.body.id}/deviceIdentities`;
    const all: string[] = upload.body.deviceIdentities.map((d: { id: string }) => d.id);
    const first = await service.get(path, { headers: { Prefer: 'odata.maxpagesize=100' } });
    const seen: string[] = first.body.value.map((d: { id: string }) => d.id);

    // act: delete three devices already seen, add one, then follow the rest of the chain
    for (const id of seen.slice(0, 3)) expect((await service.request('DELETE', `${path}/${id}`)).status).toBe(204);
    expect((await service.request('POST', path, { body: { serialNumber: 'LATE' } })).status).toBe(201);
    const rest = await walk(first.body['@odata.nextLink'], { Prefer: 'odata.maxpagesize=100' });

    // assert: every device that existed throughout is returned exactly once
    const ids = [...seen, ...rest.ids];
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of all) expect(ids).toContain(id);
  });
});

describe('paging the uploads', () => {
  it('pages the uploads collection the same way', async () => {
    // arrange: 150 more uploads (the default upload and two others exist already)
    const before = Number((await service.get(`${UPLOADS}/$count`)).text);
    for (let i = 0; i < 150; i++) expect((await service.request('POST', UPLOADS, { body: {} })).status).toBe(201);

    // act
    const byDefault = await walk(UPLOADS);
    const bySmallPages = await walk(`${UPLOADS}?${query({ $count: 'true', $orderby: 'createdDateTimeUtc desc' })}`, { Prefer: 'odata.maxpagesize=25' });

    // assert
    const total = before + 150;
    expect(sizes(byDefault.pages)).toEqual([100, total - 100]);
    expect(new Set(byDefault.ids).size).toBe(total);
    expect(bySmallPages.pages.every((p) => p.body['@odata.count'] === total)).toBe(true);
    expect(new Set(bySmallPages.ids).size).toBe(total);
    expect(bySmallPages.pages[0].headers.get('preference-applied')).toBe('odata.maxpagesize=25');
  });
});

describe('the SQL of a filtered device list', () => {
  /** Runs `act` and returns the SELECTs it sent for the device table, with their parameters. */
  async function capture(dataSource: DataSource, act: () => Promise<unknown>): Promise<[string, unknown[]][]> {
    const seen: [string, unknown[]][] = [];
    const spy = jest.spyOn(dataSource.logger, 'logQuery').mockImplementation((sql: string, parameters?: unknown[]) => {
      if (/^SELECT/.test(sql) && sql.includes('FROM "importedWindowsAutopilotDeviceIdentity"')) seen.push([sql, parameters ?? []]);
    });
    try {
      await act();
    } finally {
      spy.mockRestore();
    }
    return seen;
  }

  /**
   * The plan of a statement, one line per step. SQLite: EXPLAIN QUERY PLAN. PostgreSQL (npm run test:pg): EXPLAIN with
   * sequential scans disabled, since on a small table its planner rightly prefers them; the question is whether an index serves.
   */
  async function planOf(dataSource: DataSource, sql: string, parameters: unknown[]): Promise<string[]> {
    if (dataSource.options.type === 'sqlite') {
      return (await dataSource.query<{ detail: string }[]>(`EXPLAIN QUERY PLAN ${sql}`, parameters)).map((row) => row.detail);
    }
    const runner = dataSource.createQueryRunner();
    try {
      await runner.query('SET enable_seqscan = off');
      return ((await runner.query(`EXPLAIN ${sql}`, parameters)) as { 'QUERY PLAN': string }[]).map((row) => row['QUERY PLAN'].trim());
    } finally {
      await runner.query('RESET enable_seqscan');
      await runner.release();
    }
  }

  const USES_INDEX = /^SEARCH t USING (COVERING )?INDEX IX_device_|(Index|Index Only|Bitmap Index) Scan (using|on) "?IX_device_/;
  const SCANS_TABLE = /^SCAN t\b|Seq Scan on/;

  it.each([
    ['live, filtered', () => `${LIVE}?${query({ $filter: "groupTag eq 'red'", $count: 'true' })}`],
    ['contained, filtered on an enum in state', () => `${UPLOADS}/${uploadId}/deviceIdentities?${query({ $filter: "state/deviceImportStatus eq 'pending'" })}`],
    ['default upload, filtered with in', () => `${DEFAULT_UPLOAD}/deviceIdentities?${query({ $filter: "serialNumber in ('SN-0001','SN-0002')" })}`],
    ['live, a next page', () => `${LIVE}?$skiptoken=`],
  ])('uses an index: %s', async (_what, url) => {
    // arrange: a next page needs a real token
    const dataSource = service.app.db.dataSource;
    let target = url();
    if (target.endsWith('$skiptoken=')) target = (await service.get(`${LIVE}?${query({ $filter: "groupTag eq 'red'" })}`)).body['@odata.nextLink'];

    // act
    const statements = await capture(dataSource, () => service.get(target));

    // assert: every statement searches an index of the device table; none scans the table
    expect(statements.length).toBeGreaterThan(0);
    for (const [sql, parameters] of statements) {
      const plan = await planOf(dataSource, sql, parameters);
      expect(plan.some((step) => USES_INDEX.test(step))).toBe(true);
      expect(plan.filter((step) => SCANS_TABLE.test(step))).toEqual([]);
    }
  });
});
