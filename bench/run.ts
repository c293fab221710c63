import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { mintToken } from '../src/auth/tokens';
import { args, benchDatabase, flag, PG } from './cli';

/**
 * `npm run bench [-- --pg] [--duration 10] [--devices 100000] [--large 1000000] [--connections 20] [--warmup 1] [--keep]`: the service as
 * users run it (a bearer token on every request, logging at its default level into a file) and a raw bound on the
 * same engine (bench/raw-server.ts), side by side on the same machine, seconds apart. Every scenario is printed as
 * service vs bound with the ratio; the table, the import-processing phase and the large-table comparison are written
 * as JSON under bench/results/. Exits 1 if any request failed.
 *
 *   1. preload `--devices` devices in uploads of 500 (4 at a time, timed), then GET by key, PATCH, a filtered list
 *      of 50, a contains(serialNumber) lookup in the live collection (10,000 devices imported for it), a deep insert
 *      of 500 and the import action with 500, each for `--duration` seconds with `--connections` connections after
 *      `--warmup` seconds of the same load that are not recorded;
 *   2. import processing: a fresh service with the import worker on (delay 0) and a fresh bound processing imports,
 *      each on a fresh database: 10,000 devices in 20 imports of 500 (4 at a time), timed from the first request
 *      until all are complete;
 *   3. with `--large N` (0 skips it): both tables filled up to N devices (timed), then GET, PATCH and the list again,
 *      each next to its figure at `--devices`.
 */
const DURATION = flag('duration', 10);
const DEVICES = flag('devices', 100_000);
const LARGE = flag('large', 1_000_000);
const CONNECTIONS = flag('connections', 20);
/** Seconds of unrecorded load before each measured run, so neither process is measured cold. */
const WARMUP = flag('warmup', 1);
const KEEP = args.includes('--keep');
const BATCH = 500;
/** Devices in the live collection for the contains lookup. */
const LIVE_DEVICES = 10_000;
/** Devices imported in the import-processing phase. */
const PROCESS_DEVICES = 10_000;
const POLL_MS = 50;
const SECRET = 'bench-secret-0123456789abcdef';
const ROOT = join(__dirname, '..', '..');
const GRAPH = '/beta/deviceManagement';

interface Paths {
  device: (upload: string, id: string) => string;
  list: (upload: string) => string;
  uploads: string;
  import: string;
  contains: (text: string) => string;
  /** Live devices in an import status, as a plain number. */
  count: (status: 'complete' | 'error') => string;
  registeredCount: string;
}

const SERVICE_PATHS: Paths = {
  device: (u, id) => `${GRAPH}/importedWindowsAutopilotDeviceIdentityUploads/${u}/deviceIdentities/${id}`,
  list: (u) => `${GRAPH}/importedWindowsAutopilotDeviceIdentityUploads/${u}/deviceIdentities?$filter=${encodeURIComponent("groupTag eq 'x'")}&$top=50`,
  uploads: `${GRAPH}/importedWindowsAutopilotDeviceIdentityUploads`,
  import: `${GRAPH}/importedWindowsAutopilotDeviceIdentities/import`,
  contains: (text) => `${GRAPH}/importedWindowsAutopilotDeviceIdentities?$filter=${encodeURIComponent(`contains(serialNumber,'${text}')`)}&$top=50`,
  count: (status) => `${GRAPH}/importedWindowsAutopilotDeviceIdentities/$count?$filter=${encodeURIComponent(`state/deviceImportStatus eq '${status}'`)}`,
  registeredCount: `${GRAPH}/windowsAutopilotDeviceIdentities/$count`,
};
const BOUND_PATHS: Paths = {
  device: (_u, id) => `/devices/${id}`,
  list: (u) => `/uploads/${u}?groupTag=x&top=50`,
  uploads: '/uploads',
  import: '/import',
  contains: (text) => `/live?contains=${encodeURIComponent(text)}&top=50`,
  count: (status) => `/live/count?status=${status}`,
  registeredCount: '/registered/count',
};

interface Target {
  name: 'service' | 'bound';
  port: number;
  child: ChildProcess;
  paths: Paths;
  headers: Record<string, string>;
  /** Uploads made by the preloads, and each preloaded device's id and upload (an index into `uploads`). */
  uploads: string[];
  ids: string[];
  uploadOf: number[];
  /** Devices stored in all, by every scenario: the size of the device table. */
  stored: number;
}

const hash = (i: number) => {
  const b = Buffer.alloc(512);
  b.writeUInt32BE(i, 0);
  return b.toString('base64');
};
const device = (serial: string, i: number) => ({
  '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentity',
  groupTag: i % 2 === 0 ? 'x' : 'y',
  serialNumber: serial,
  productKey: `PK-${i}`,
  hardwareIdentifier: hash(i),
  assignedUserPrincipalName: `user${i % 100}@contoso.com`,
});
/** Serial numbers SN-0, SN-1, …, shared by both targets' preloads and bulk scenarios (unique within a target's run). */
const serials = new Map<string, number>();
const batch = (t: Target, n = BATCH) =>
  Array.from({ length: n }, () => {
    const i = serials.get(t.name) ?? 0;
    serials.set(t.name, i + 1);
    return device(`SN-${i}`, i);
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const random = (n: number) => Math.floor(Math.random() * n);

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Starts a node process with its output in `log` and waits until GET /health answers. */
async function start(name: string, port: number, env: Record<string, string>, script: string[], log: string): Promise<ChildProcess> {
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, script, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const state: { exit?: number | null } = {};
  child.once('exit', (code) => (state.exit = code));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if ('exit' in state) throw new Error(`${name} exited (${state.exit}) before it was ready; ${log}:\n${tail(log)}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready after 60 s; ${log}:\n${tail(log)}`);
    await sleep(50);
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The 1, 5 and 15 minute load averages: this run's processes and whatever else the machine is doing. */
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
}
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function send(t: Target, method: string, path: string, body?: unknown): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${t.port}${path}`, {
    method,
    headers: { ...t.headers, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${t.name}: ${method} ${path} → ${res.status} ${text.slice(0, 300)}`);
  return text;
}

interface Result {
  scenario: string;
  target: string;
  requests: number;
  seconds: number;
  reqPerSec: number;
  devicesPerSec?: number;
  p50: number;
  p99: number;
  errors: number;
  cpuMsPerRequest: number;
  rssMb: number;
}

const percentile = (xs: number[], p: number) => {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
};

/**
 * Runs `requests` requests, `concurrency` at a time, timed: `request(i)` sends the i-th and returns how many devices it
 * stored. With `during`, the scenario ends when both the requests and `during` (a poll for the work they started,
 * returning the devices done) have.
 */
async function bulk(
  t: Target,
  scenario: string,
  requests: number,
  concurrency: number,
  request: (i: number) => Promise<number>,
  during?: () => Promise<number>,
): Promise<Result> {
  const pid = t.child.pid!;
  const cpu0 = cpuMs(pid);
  const t0 = performance.now();
  const latencies: number[] = [];
  let next = 0;
  let devices = 0;
  const worker = async () => {
    while (next < requests) {
      const i = next++;
      const s = performance.now();
      const stored = await request(i);
      devices += stored;
      latencies.push(performance.now() - s);
    }
  };
  const workers = Promise.all(Array.from({ length: concurrency }, worker));
  const end = during ? Promise.all([workers, during()]).then(([, d]) => d) : workers.then(() => devices);
  const counted = await end;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuMs(pid) - cpu0;
  return {
    scenario,
    target: t.name,
    requests,
    seconds,
    reqPerSec: requests / seconds,
    devicesPerSec: counted / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors: 0,
    cpuMsPerRequest: cpu / requests,
    rssMb: rssMb(pid),
  };
}

/** Uploads of 500 (the last one smaller) until `count` more devices are stored, 4 at a time; remembers their ids. */
function preload(t: Target, scenario: string, count: number): Promise<Result> {
  return bulk(t, scenario, Math.ceil(count / BATCH), 4, async (i) => {
    const n = Math.min(BATCH, count - i * BATCH);
    const created = JSON.parse(await send(t, 'POST', t.paths.uploads, { deviceIdentities: batch(t, n) }));
    const u = t.uploads.push(created.id) - 1;
    for (const d of created.deviceIdentities) {
      t.ids.push(d.id);
      t.uploadOf.push(u);
    }
    if (created.deviceIdentities.length !== n) throw new Error(`${t.name}: an upload of ${n} devices answered ${created.deviceIdentities.length}`);
    t.stored += n;
    return n;
  });
}

/** `count` devices into the live collection through the import action, 500 a request, 4 at a time. */
function importLive(t: Target, scenario: string, count: number, serial: (i: number) => string, during?: () => Promise<number>): Promise<Result> {
  return bulk(
    t,
    scenario,
    Math.ceil(count / BATCH),
    4,
    async (r) => {
      const devices = Array.from({ length: Math.min(BATCH, count - r * BATCH) }, (_, j) => device(serial(r * BATCH + j), r * BATCH + j));
      const created = JSON.parse(await send(t, 'POST', t.paths.import, { importedWindowsAutopilotDeviceIdentities: devices }));
      if (created.value.length !== devices.length) throw new Error(`${t.name}: an import of ${devices.length} devices answered ${created.value.length}`);
      t.stored += devices.length;
      return devices.length;
    },
    during,
  );
}

async function measure(t: Target, scenario: string, perRequestDevices: number, request: () => autocannon.Request): Promise<Result> {
  const pid = t.child.pid!;
  const load = async (duration: number) => {
    const result = await autocannon({
      url: `http://127.0.0.1:${t.port}`,
      connections: CONNECTIONS,
      duration,
      headers: { ...t.headers, 'Content-Type': 'application/json' },
      requests: [{ setupRequest: (req) => ({ ...req, ...request() }) }],
    });
    t.stored += result['2xx'] * (perRequestDevices > 1 ? perRequestDevices : 0);
    return result;
  };
  const warmup = WARMUP > 0 ? await load(WARMUP) : undefined;
  const cpuBefore = cpuMs(pid);
  const result = await load(DURATION);
  const cpu = cpuMs(pid) - cpuBefore;
  const requests = result.requests.total;
  return {
    scenario,
    target: t.name,
    requests,
    seconds: result.duration,
    reqPerSec: result.requests.average,
    devicesPerSec: perRequestDevices > 1 ? result.requests.average * perRequestDevices : undefined,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx + (warmup ? warmup.errors + warmup.non2xx : 0),
    cpuMsPerRequest: requests ? cpu / requests : 0,
    rssMb: rssMb(pid),
  };
}

function serviceEnv(port: number, databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  // No LOG_LEVEL: the default (info: a line per request) as `npm start` runs it.
  return {
    PORT: String(port), DATABASE_URL: databaseUrl, AUTH_SECRET: SECRET, NODE_ENV: 'production',
    THROTTLE_READS: '100000000/1', THROTTLE_WRITES: '100000000/1',
    // The bound processes no imports in the request scenarios; neither does the service (processing is measured on its own).
    IMPORT_WORKER: 'off',
    // The bound commits with synchronous=NORMAL; the service's default FULL adds an fsync per commit.
    SQLITE_SYNCHRONOUS: 'normal',
    ...extra,
  };
}

const fmt = (n: number | undefined, d = 0) => (n === undefined || !Number.isFinite(n) ? '' : n.toFixed(d));
const throughput = (r: Result) => r.devicesPerSec ?? r.reqPerSec;

function line(r: Result) {
  const rate = r.devicesPerSec !== undefined ? `${fmt(r.devicesPerSec).padStart(7)} devices/s` : `${fmt(r.reqPerSec).padStart(7)} req/s    `;
  console.log(`${r.scenario.padEnd(46)} ${r.target.padEnd(8)} ${rate}  p50 ${String(r.p50).padStart(5)} ms  p99 ${String(r.p99).padStart(5)} ms  errors ${r.errors}`);
}

async function main() {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'bench-'));
  const token = await mintToken(SECRET, { tenant: 'bench', scope: 'write', expiresIn: '6h' });
  const cleanups: (() => Promise<void>)[] = [];
  const results: Result[] = [];
  const record = (r: Result) => {
    results.push(r);
    line(r);
    return r;
  };
  let failed = false;

  try {
    const serviceDb = await benchDatabase('bench_service', join(dir, 'service.sqlite'));
    cleanups.push(() => serviceDb.drop());
    const boundDb = await benchDatabase('bench_bound', join(dir, 'bound.sqlite'));
    cleanups.push(() => boundDb.drop());
    console.log(`${PG ? 'PostgreSQL' : 'SQLite'}: service and bound logs in ${dir}; load average ${loadAverage()}`);

    const service: Target = {
      name: 'service',
      port: 5801,
      child: await start('service', 5801, serviceEnv(5801, serviceDb.url), [join(ROOT, 'dist', 'src', 'main.js')], join(dir, 'service.log')),
      paths: SERVICE_PATHS,
      headers: { Authorization: `Bearer ${token}` },
      uploads: [],
      ids: [],
      uploadOf: [],
      stored: 0,
    };
    cleanups.unshift(() => stop(service.child));
    const bound: Target = {
      name: 'bound',
      port: 5802,
      child: await start('bound', 5802, {}, [join(__dirname, 'raw-server.js'), '5802', boundDb.url.replace(/^sqlite:/, '')], join(dir, 'bound.log')),
      paths: BOUND_PATHS,
      headers: {},
      uploads: [],
      ids: [],
      uploadOf: [],
      stored: 0,
    };
    cleanups.unshift(() => stop(bound.child));
    const targets = [service, bound];

    // --- 1. the request scenarios at --devices ---------------------------------------------------------------------
    // PostgreSQL: statistics as autovacuum would have them a little after a bulk load, on both sides alike.
    const analyze = async () => {
      await serviceDb.analyze(['importedWindowsAutopilotDeviceIdentity', 'importedWindowsAutopilotDeviceIdentityUpload']);
      await boundDb.analyze(['device', 'upload']);
    };
    const preloadName = `preload ${DEVICES.toLocaleString('en')} devices (uploads of 500)`;
    for (const t of targets) record(await preload(t, preloadName, DEVICES));
    await analyze();

    const pick = (t: Target) => {
      const i = random(t.ids.length);
      return t.paths.device(t.uploads[t.uploadOf[i]], t.ids[i]);
    };
    const GET = 'GET device by key';
    const PATCH = 'PATCH device (groupTag + state)';
    const LIST = "GET 50 devices, $filter=groupTag eq 'x'";
    const indexed: [string, number, (t: Target) => () => autocannon.Request][] = [
      [GET, 1, (t) => () => ({ method: 'GET', path: pick(t) })],
      // groupTag x or y at random, so about half of every upload's devices stay 'x' for the filtered list.
      [PATCH, 1, (t) => () => ({
        method: 'PATCH',
        path: pick(t),
        body: JSON.stringify({ groupTag: Math.random() < 0.5 ? 'x' : 'y', state: { deviceImportStatus: Math.random() < 0.5 ? 'pending' : 'complete' } }),
      })],
      [LIST, 1, (t) => () => ({ method: 'GET', path: t.paths.list(t.uploads[random(t.uploads.length)]) })],
    ];
    const CONTAINS = 'contains(serialNumber) in 10,000 live devices, top 50';
    const bulkScenarios: [string, number, (t: Target) => () => autocannon.Request][] = [
      // LV-0512 matches LV-05120 … LV-05129: ten devices, found by a scan of the tenant's live devices.
      [CONTAINS, 1, (t) => () => ({ method: 'GET', path: t.paths.contains(`LV-${String(random(1000)).padStart(4, '0')}`) })],
      ['POST upload with 500 devices (deep insert)', BATCH, (t) => () => ({ method: 'POST', path: t.paths.uploads, body: JSON.stringify({ deviceIdentities: batch(t) }) })],
      ['import action, 500 devices', BATCH, (t) => () => ({ method: 'POST', path: t.paths.import, body: JSON.stringify({ importedWindowsAutopilotDeviceIdentities: batch(t) }) })],
    ];
    const run = async (scenarios: typeof indexed, suffix = '') => {
      for (const [name, perRequest, make] of scenarios) {
        for (const t of targets) record(await measure(t, name + suffix, perRequest, make(t)));
      }
    };
    await run(indexed);
    // The live collection for the contains lookup: serials LV-00000 … LV-09999.
    for (const t of targets) {
      const r = await importLive(t, 'setup: 10,000 live devices', LIVE_DEVICES, (i) => `LV-${String(i).padStart(5, '0')}`);
      console.log(`  ${t.name}: imported ${LIVE_DEVICES} live devices in ${r.seconds.toFixed(1)} s`);
    }
    await analyze();
    for (const t of targets) {
      const found = JSON.parse(await send(t, 'GET', t.paths.contains('LV-0512'))).value.map((d: { serialNumber: string }) => d.serialNumber).sort();
      const expected = Array.from({ length: 10 }, (_, i) => `LV-0512${i}`);
      if (found.join() !== expected.join()) throw new Error(`${t.name}: contains(serialNumber,'LV-0512') found ${found.join(', ')}; expected ${expected.join(', ')}`);
    }
    await run(bulkScenarios);
    const scenarioNames = [preloadName, ...indexed.map(([n]) => n), ...bulkScenarios.map(([n]) => n)];

    // --- 2. import processing ---------------------------------------------------------------------------------------
    const PROCESSING = `import processing, ${PROCESS_DEVICES.toLocaleString('en')} devices`;
    const processingChecks: Record<string, unknown> = {};
    for (const name of ['service', 'bound'] as const) {
      const db = await benchDatabase(`bench_${name}_processing`, join(dir, `${name}-processing.sqlite`));
      const port = name === 'service' ? 5803 : 5804;
      const log = join(dir, `${name}-processing.log`);
      const child =
        name === 'service'
          ? await start(name, port, serviceEnv(port, db.url, { IMPORT_WORKER: 'on', IMPORT_DELAY_MS: '0' }), [join(ROOT, 'dist', 'src', 'main.js')], log)
          : await start(name, port, {}, [join(__dirname, 'raw-server.js'), String(port), db.url.replace(/^sqlite:/, ''), '--process'], log);
      const t: Target = { ...(name === 'service' ? service : bound), port, child, uploads: [], ids: [], uploadOf: [], stored: 0 };
      try {
        let importing = true;
        const poll = async () => {
          const deadline = Date.now() + 600_000;
          for (;;) {
            const complete = Number(await send(t, 'GET', t.paths.count('complete')));
            if (complete >= PROCESS_DEVICES) return complete;
            if (!importing && Date.now() > deadline) throw new Error(`${name}: ${complete} of ${PROCESS_DEVICES} devices complete after 10 minutes`);
            await sleep(POLL_MS);
          }
        };
        const r = record(
          await importLive(t, PROCESSING, PROCESS_DEVICES, (i) => `PR-${i}`, poll).finally(() => {
            importing = false;
          }),
        );
        const errors = Number(await send(t, 'GET', t.paths.count('error')));
        const registered = Number(await send(t, 'GET', t.paths.registeredCount));
        processingChecks[name] = { complete: PROCESS_DEVICES, errors, registered };
        if (errors !== 0 || registered !== PROCESS_DEVICES) {
          r.errors += errors + Math.abs(PROCESS_DEVICES - registered);
          console.log(`  ${name}: ${errors} devices in error, ${registered} registered devices (expected 0 and ${PROCESS_DEVICES})`);
        }
      } finally {
        await stop(child);
        await db.drop();
      }
    }
    scenarioNames.push(PROCESSING);

    // --- 3. the indexed paths again at --large devices --------------------------------------------------------------
    let largeRows: unknown[] = [];
    if (LARGE > 0) {
      const preloadLarge = `preload to ${LARGE.toLocaleString('en')} devices (uploads of 500)`;
      for (const t of targets) {
        const more = LARGE - t.stored;
        if (more > 0) record(await preload(t, preloadLarge, more));
        else console.log(`  ${t.name}: already holds ${t.stored.toLocaleString('en')} devices (over --large ${LARGE}), none preloaded`);
      }
      if (results.some((r) => r.scenario === preloadLarge)) scenarioNames.push(preloadLarge);
      await analyze();
      // The table sizes the large phase really ran at: --large, unless the earlier scenarios had stored more.
      const sizes = service.stored === bound.stored ? service.stored.toLocaleString('en') : `${service.stored.toLocaleString('en')} / ${bound.stored.toLocaleString('en')}`;
      const suffix = ` at ${sizes}`;
      await run(indexed, suffix);
      const get = (scenario: string, target: string) => results.find((r) => r.scenario === scenario && r.target === target)!;
      const change = (before: Result, after: Result) => ((after.reqPerSec / before.reqPerSec - 1) * 100);
      const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(0)}%${x < -20 ? ' (slower by over 20%)' : ''}`;
      console.log(
        `\nIndexed paths at ${DEVICES.toLocaleString('en')} and at ${sizes} devices (req/s, p99 ms; the target: within 20%)\n`,
      );
      console.log(`| scenario | service ${DEVICES} | service ${service.stored} | change | p99 | bound ${DEVICES} | bound ${bound.stored} | change | bound p99 |`);
      console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
      largeRows = indexed.map(([name]) => {
        const s0 = get(name, 'service');
        const s1 = get(name + suffix, 'service');
        const b0 = get(name, 'bound');
        const b1 = get(name + suffix, 'bound');
        console.log(
          `| ${name} | ${fmt(s0.reqPerSec)} | ${fmt(s1.reqPerSec)} | ${signed(change(s0, s1))} | ${s0.p99} → ${s1.p99} | ` +
            `${fmt(b0.reqPerSec)} | ${fmt(b1.reqPerSec)} | ${signed(change(b0, b1))} | ${b0.p99} → ${b1.p99} |`,
        );
        return {
          scenario: name,
          devices: { service: [DEVICES, service.stored], bound: [DEVICES, bound.stored] },
          service: [s0, s1],
          bound: [b0, b1],
          change: { service: change(s0, s1), bound: change(b0, b1) },
        };
      });
      scenarioNames.push(...indexed.map(([n]) => n + suffix));
    }

    // --- the table ---------------------------------------------------------------------------------------------------
    const rows = scenarioNames.map((name) => {
      const s = results.find((r) => r.scenario === name && r.target === 'service');
      const b = results.find((r) => r.scenario === name && r.target === 'bound');
      return { scenario: name, service: s, bound: b, ratio: s && b ? throughput(s) / throughput(b) : undefined };
    });
    console.log(
      `\n${PG ? 'PostgreSQL' : 'SQLite'} · ${CONNECTIONS} connections · ${DURATION} s per run · ${DEVICES.toLocaleString('en')} devices preloaded` +
        `${LARGE > 0 ? ` · --large ${LARGE.toLocaleString('en')}` : ''} · auth on, default logging\n`,
    );
    console.log('| scenario | service req/s | devices/s | p50 ms | p99 ms | CPU ms/req | RSS MB | bound req/s | bound devices/s | bound p50 | bound p99 | bound CPU ms/req | bound RSS MB | ratio |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const cells = (x: Result | undefined) =>
      x ? [fmt(x.reqPerSec), fmt(x.devicesPerSec), String(x.p50), String(x.p99), fmt(x.cpuMsPerRequest, 2), fmt(x.rssMb)] : ['—', '', '', '', '', ''];
    for (const r of rows) {
      const ratio = r.ratio === undefined ? '—' : `${fmt(r.ratio * 100)}%`;
      console.log(`| ${[r.scenario, ...cells(r.service), ...cells(r.bound), ratio].join(' | ')} |`);
    }
    console.log(
      '\nratio: service/bound throughput (devices/s where a request carries 500). Preload and import processing: 4 requests at a time, ' +
        'req = a request of 500 devices; import processing is timed from the first import until the last device is complete.',
    );
    const serviceLog = statSync(join(dir, 'service.log')).size / 1e6;
    console.log(`the service logged ${serviceLog.toFixed(0)} MB at its default level (info: a line per request)`);
    const rss = { service: rssMb(service.child.pid!), bound: rssMb(bound.child.pid!) };
    console.log(`RSS after the run: service ${rss.service.toFixed(0)} MB, bound ${rss.bound.toFixed(0)} MB (${(rss.service / rss.bound).toFixed(2)}x)`);
    const errors = results.reduce((n, r) => n + r.errors, 0);
    const totalSeconds = (Date.now() - started) / 1000;
    console.log(`errors and non-2xx answers: ${errors}; total time ${totalSeconds.toFixed(0)} s; load average ${loadAverage()} (other work on the machine skews both sides)`);
    failed = errors > 0;

    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    const out = join(ROOT, 'bench', 'results', `bench-${PG ? 'pg' : 'sqlite'}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      out,
      JSON.stringify(
        {
          engine: PG ? 'postgres' : 'sqlite',
          connections: CONNECTIONS,
          durationSeconds: DURATION,
          devices: DEVICES,
          large: LARGE,
          liveDevices: LIVE_DEVICES,
          processedDevices: PROCESS_DEVICES,
          auth: true,
          logLevel: 'default (info)',
          serviceLogMb: serviceLog,
          storedAtEnd: { service: service.stored, bound: bound.stored },
          rows,
          largeComparison: largeRows,
          processing: processingChecks,
          rss,
          errors,
          totalSeconds,
        },
        null,
        2,
      ),
    );
    console.log(`written: ${out}`);
  } catch (err) {
    failed = true;
    console.error(err);
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((err: unknown) => console.error(err));
    // The databases and logs of a large run take gigabytes: kept only when something failed, or with --keep.
    if (failed || KEEP) console.log(`logs${PG ? '' : ' and databases'} kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}

void main();
