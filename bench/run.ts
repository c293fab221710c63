import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { mintToken } from '../src/auth/tokens';
import { benchDatabase, flag, PG } from './cli';

/**
 * `npm run bench [-- --pg] [--duration 10] [--devices 100000]`: the service and a raw node:http + better-sqlite3
 * bound, side by side, on the same machine seconds apart. Prints req/s, p50, p99, server CPU ms per request and
 * RSS for five scenarios, each as a ratio to the bound, and writes the table as JSON under bench/results/.
 */
const DURATION = flag('duration', 10);
const DEVICES = flag('devices', 100_000);
const CONNECTIONS = flag('connections', 20);
const UPLOAD_SIZE = 500;
const SECRET = 'bench-secret-0123456789abcdef';
const ROOT = join(__dirname, '..', '..');

interface Target {
  name: 'service' | 'bound';
  port: number;
  child: ChildProcess;
  /** Path builders for the five operations. */
  paths: {
    device: (id: string) => string;
    list: (upload: string) => string;
    uploads: string;
    import: string;
  };
  headers: Record<string, string>;
}

const hash = (i: number) => {
  const b = Buffer.alloc(512);
  b.writeUInt32BE(i, 0);
  return b.toString('base64');
};
const device = (i: number) => ({
  '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentity',
  groupTag: i % 2 === 0 ? 'x' : 'y',
  serialNumber: `SN-${i}`,
  productKey: `PK-${i}`,
  hardwareIdentifier: hash(i),
  assignedUserPrincipalName: `user${i % 100}@contoso.com`,
});
let serial = 0;
const batch = () => Array.from({ length: UPLOAD_SIZE }, () => device(serial++));

async function start(name: Target['name'], port: number, env: Record<string, string>, script: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, script, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('listening on')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}): ${output}`)));
  });
  return child;
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
}
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function send(port: number, method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** Loads DEVICES devices in uploads of 500, four requests at a time; returns upload ids and device ids. */
async function preload(t: Target) {
  const uploads: string[] = [];
  const ids: string[] = [];
  serial = 0;
  const rounds = Math.ceil(DEVICES / UPLOAD_SIZE);
  let next = 0;
  const worker = async () => {
    while (next < rounds) {
      next++;
      const created = await send(t.port, 'POST', t.paths.uploads, t.headers, { deviceIdentities: batch() });
      uploads.push(created.id);
      for (const d of created.deviceIdentities) ids.push(d.id);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return { uploads, ids };
}

interface Result {
  scenario: string;
  target: string;
  requests: number;
  reqPerSec: number;
  devicesPerSec?: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  cpuMsPerRequest: number;
  rssMb: number;
}

async function measure(t: Target, scenario: string, perRequestDevices: number, request: () => autocannon.Request): Promise<Result> {
  const pid = t.child.pid!;
  const cpuBefore = cpuMs(pid);
  const result = await autocannon({
    url: `http://127.0.0.1:${t.port}`,
    connections: CONNECTIONS,
    duration: DURATION,
    headers: { ...t.headers, 'Content-Type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, ...request() }) }],
  });
  const cpu = cpuMs(pid) - cpuBefore;
  const requests = result.requests.total;
  return {
    scenario,
    target: t.name,
    requests,
    reqPerSec: result.requests.average,
    devicesPerSec: perRequestDevices > 1 ? result.requests.average * perRequestDevices : undefined,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
    cpuMsPerRequest: requests ? cpu / requests : 0,
    rssMb: rssMb(pid),
  };
}

async function main() {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'bench-'));
  const database = await benchDatabase('bench', join(dir, 'service.sqlite'));
  const databaseUrl = database.url;

  const token = await mintToken(SECRET, { tenant: 'bench', scope: 'write', expiresIn: '2h' });
  const service: Target = {
    name: 'service',
    port: 5801,
    child: await start('service', 5801, {
      PORT: '5801', DATABASE_URL: databaseUrl, AUTH_SECRET: SECRET, LOG_LEVEL: 'silent', NODE_ENV: 'production',
      THROTTLE_READS: '100000000/1', THROTTLE_WRITES: '100000000/1',
      // The bound processes no imports; neither does the service here (import processing is measured on its own).
      IMPORT_WORKER: 'off',
      // The bound commits with synchronous=NORMAL; the service's default FULL adds an fsync per commit.
      SQLITE_SYNCHRONOUS: 'normal',
    }, [join(ROOT, 'dist', 'src', 'main.js')]),
    paths: {
      device: (id) => `/beta/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/${currentUpload(id)}/deviceIdentities/${id}`,
      list: (u) => `/beta/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/${u}/deviceIdentities?$filter=${encodeURIComponent("groupTag eq 'x'")}&$top=50`,
      uploads: '/beta/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads',
      import: '/beta/deviceManagement/importedWindowsAutopilotDeviceIdentities/import',
    },
    headers: { Authorization: `Bearer ${token}` },
  };
  const bound: Target = {
    name: 'bound',
    port: 5802,
    child: await start('bound', 5802, {}, [join(__dirname, 'raw-server.js'), '5802', join(dir, 'bound.sqlite')]),
    paths: {
      device: (id) => `/devices/${id}`,
      list: (u) => `/uploads/${u}?groupTag=x&top=50`,
      uploads: '/uploads',
      import: '/import',
    },
    headers: {},
  };

  const uploadOf = new Map<string, string>();
  const currentUpload = (id: string) => uploadOf.get(id)!;
  const data = new Map<string, { uploads: string[]; ids: string[] }>();
  for (const t of [service, bound]) {
    const t0 = Date.now();
    const loaded = await preload(t);
    data.set(t.name, loaded);
    console.log(`preloaded ${loaded.ids.length} devices in ${loaded.uploads.length} uploads into ${t.name} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  // map service device ids to their upload, for the contained path
  for (const u of data.get('service')!.uploads) uploadOf.set(u, u);
  const serviceIds = await (async () => {
    const pairs: [string, string][] = [];
    for (const u of data.get('service')!.uploads.slice(0, 40)) {
      const page = await send(service.port, 'GET', `${service.paths.list(u).split('?')[0]}?$select=id&$top=500`, service.headers);
      for (const d of page.value) pairs.push([d.id, u]);
    }
    return pairs;
  })();
  for (const [id, u] of serviceIds) uploadOf.set(id, u);
  const idsFor = (t: Target) => (t.name === 'service' ? serviceIds.map(([id]) => id) : data.get('bound')!.ids.slice(0, serviceIds.length));
  const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];

  const scenarios: [string, number, (t: Target) => () => autocannon.Request][] = [
    ['GET device by key', 1, (t) => { const ids = idsFor(t); return () => ({ method: 'GET', path: t.paths.device(pick(ids)) }); }],
    ['PATCH device (groupTag + state)', 1, (t) => {
      const ids = idsFor(t);
      return () => ({ method: 'PATCH', path: t.paths.device(pick(ids)), body: JSON.stringify({ groupTag: 'y', state: { deviceImportStatus: pick(['pending', 'complete']) } }) });
    }],
    ["GET 50 devices, $filter=groupTag eq 'x'", 1, (t) => { const ups = data.get(t.name)!.uploads; return () => ({ method: 'GET', path: t.paths.list(pick(ups)) }); }],
    ['POST upload with 500 devices (deep insert)', UPLOAD_SIZE, (t) => () => ({ method: 'POST', path: t.paths.uploads, body: JSON.stringify({ deviceIdentities: batch() }) })],
    ['import action, 500 devices', UPLOAD_SIZE, (t) => () => ({ method: 'POST', path: t.paths.import, body: JSON.stringify({ importedWindowsAutopilotDeviceIdentities: batch() }) })],
  ];

  const results: Result[] = [];
  for (const [name, perRequest, make] of scenarios) {
    for (const t of [service, bound]) {
      const r = await measure(t, name, perRequest, make(t));
      results.push(r);
      console.log(`${name.padEnd(44)} ${t.name.padEnd(8)} ${r.reqPerSec.toFixed(0).padStart(7)} req/s  p99 ${String(r.p99).padStart(5)} ms  errors ${r.errors + r.non2xx}`);
    }
  }

  const rows = scenarios.map(([name]) => {
    const s = results.find((r) => r.scenario === name && r.target === 'service')!;
    const b = results.find((r) => r.scenario === name && r.target === 'bound')!;
    return { scenario: name, service: s, bound: b, ratio: s.reqPerSec / b.reqPerSec };
  });
  const fmt = (n: number | undefined, d = 0) => (n === undefined ? '' : n.toFixed(d));
  console.log(`\n${PG ? 'PostgreSQL' : 'SQLite'} · ${CONNECTIONS} connections · ${DURATION} s per run · ${DEVICES} devices preloaded\n`);
  console.log('| scenario | service req/s | devices/s | p50 ms | p99 ms | CPU ms/req | RSS MB | bound req/s | bound p99 ms | bound CPU ms/req | bound RSS MB | ratio |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.scenario} | ${fmt(r.service.reqPerSec)} | ${fmt(r.service.devicesPerSec)} | ${r.service.p50} | ${r.service.p99} | ${fmt(r.service.cpuMsPerRequest, 2)} | ${fmt(r.service.rssMb)} | ` +
        `${fmt(r.bound.reqPerSec)} | ${r.bound.p99} | ${fmt(r.bound.cpuMsPerRequest, 2)} | ${fmt(r.bound.rssMb)} | ${(r.ratio * 100).toFixed(0)}% |`,
    );
  }
  const rss = { service: rssMb(service.child.pid!), bound: rssMb(bound.child.pid!) };
  console.log(`\nRSS after the run: service ${rss.service.toFixed(0)} MB, bound ${rss.bound.toFixed(0)} MB (${(rss.service / rss.bound).toFixed(2)}x)`);
  const errors = results.reduce((n, r) => n + r.errors + r.non2xx, 0);
  console.log(`errors and non-2xx answers: ${errors}; total time ${((Date.now() - started) / 1000).toFixed(0)} s`);

  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const out = join(ROOT, 'bench', 'results', `bench-${PG ? 'pg' : 'sqlite'}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, JSON.stringify({ engine: PG ? 'postgres' : 'sqlite', connections: CONNECTIONS, durationSeconds: DURATION, devices: DEVICES, rows, rss, errors }, null, 2));
  console.log(`written: ${out}`);

  service.child.kill('SIGTERM');
  bound.child.kill('SIGTERM');
  await database.drop();
  process.exit(errors > 0 ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
