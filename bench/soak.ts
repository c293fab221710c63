import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintToken } from '../src/auth/tokens';
import { benchDatabase, flag, PG } from './cli';

/**
 * `npm run soak [-- --minutes 10] [--pg] [--connections 8]`: the service as `npm start` runs it (a process of its own,
 * on a fresh SQLite file or a fresh PostgreSQL schema, import worker on), under a steady mixed load for a while:
 * reads by key and by filter, PATCHes, imports through the `import` action, deletes of imported devices and of the
 * registered devices the worker made of them. Every 30 s it prints throughput, errors and the server's RSS; at the
 * end a summary with the slope of RSS over the second half (a leak shows as a steady climb). Exits 1 on any error.
 *
 * Each client works on devices of its own, so no answer depends on another client's timing: every non-2xx is an error.
 */
const MINUTES = flag('minutes', 10);
const CONNECTIONS = flag('connections', 8);
/** Devices each client keeps around: imports top its set up, deletes bring it back down. */
const DEVICES_PER_CLIENT = flag('devices', 300);
const IMPORT_SIZE = 10;
const REPORT_EVERY_MS = 30_000;
const SAMPLE_EVERY_MS = 5_000;
const SECRET = 'soak-secret-0123456789abcdef';
const ROOT = join(__dirname, '..', '..');
const LIVE = '/beta/deviceManagement/importedWindowsAutopilotDeviceIdentities';
const REGISTERED = '/beta/deviceManagement/windowsAutopilotDeviceIdentities';

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

async function startService(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'main.js')], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('listening on')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`the service exited (${code}): ${output}`)));
  });
  return child;
}

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

const hash = (n: number) => {
  const b = Buffer.alloc(128);
  b.writeUInt32BE(n, 0);
  b.writeUInt32BE(0x50a4, 4);
  return b.toString('base64');
};

interface Stats {
  requests: number;
  errors: number;
  byOperation: Map<string, number>;
  errorSamples: string[];
  latencies: number[];
}

const newStats = (): Stats => ({ requests: 0, errors: 0, byOperation: new Map(), errorSamples: [], latencies: [] });

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'soak-'));
  const database = await benchDatabase('soak', join(dir, 'soak.sqlite'));
  const databaseUrl = database.url;
  const port = 5803;
  const child = await startService({
    PORT: String(port), DATABASE_URL: databaseUrl, AUTH_SECRET: SECRET, LOG_LEVEL: 'silent', NODE_ENV: 'production',
    THROTTLE_READS: '100000000/1', THROTTLE_WRITES: '100000000/1', IMPORT_WORKER: 'on',
  });
  const pid = child.pid!;
  const origin = `http://127.0.0.1:${port}`;
  const token = await mintToken(SECRET, { tenant: 'soak', scope: 'write', expiresIn: '24h' });
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };

  const total = newStats();
  let interval = newStats();
  const record = (operation: string, status: number, ms: number, detail: string) => {
    for (const s of [total, interval]) {
      s.requests++;
      s.latencies.push(ms);
      if (status < 200 || status >= 300) {
        s.errors++;
        if (s.errorSamples.length < 5) s.errorSamples.push(`${operation} → ${status} ${detail.slice(0, 200)}`);
      }
    }
    total.byOperation.set(operation, (total.byOperation.get(operation) ?? 0) + 1);
  };

  async function call(operation: string, method: string, path: string, body?: unknown): Promise<any> {
    const started = performance.now();
    let status = 0;
    let text: string;
    try {
      const res = await fetch(`${origin}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      status = res.status;
      text = await res.text();
    } catch (err) {
      text = String(err);
    }
    record(operation, status, performance.now() - started, text);
    if (status < 200 || status >= 300 || !text) return undefined;
    return JSON.parse(text);
  }

  const deadline = Date.now() + MINUTES * 60_000;
  let serial = 0;

  /** One client: its own devices, a weighted mix of operations until the deadline. */
  async function client(n: number) {
    const mine: string[] = [];
    const pick = () => mine[Math.floor(Math.random() * mine.length)];
    while (Date.now() < deadline) {
      const dice = Math.random();
      if (mine.length < IMPORT_SIZE || (dice < 0.1 && mine.length < DEVICES_PER_CLIENT)) {
        const devices = Array.from({ length: IMPORT_SIZE }, () => {
          const s = serial++;
          return { serialNumber: `SOAK-${n}-${s}`, groupTag: s % 2 ? 'odd' : 'even', productKey: `PK-${s}`, hardwareIdentifier: hash(s), assignedUserPrincipalName: `user${s % 50}@contoso.com` };
        });
        const created = await call('import', 'POST', `${LIVE}/import`, { importedWindowsAutopilotDeviceIdentities: devices });
        for (const d of created?.value ?? []) mine.push(d.id);
      } else if (dice < 0.2 || mine.length > DEVICES_PER_CLIENT) {
        // delete the oldest device, and the registered device the worker made of it
        const id = mine.shift()!;
        const device = await call('read device', 'GET', `${LIVE}/${id}`);
        const registered = device?.state?.deviceRegistrationId;
        if (registered) await call('delete registered', 'DELETE', `${REGISTERED}/${registered}`);
        await call('delete device', 'DELETE', `${LIVE}/${id}`);
      } else if (dice < 0.45) {
        await call('patch device', 'PATCH', `${LIVE}/${pick()}`, { groupTag: `g${Math.floor(Math.random() * 10)}`, orderIdentifier: `PO-${serial}` });
      } else if (dice < 0.75) {
        await call('read device', 'GET', `${LIVE}/${pick()}`);
      } else if (dice < 0.9) {
        const filter = encodeURIComponent(`startswith(serialNumber,'SOAK-${n}-') and groupTag ne 'none'`);
        await call('list devices', 'GET', `${LIVE}?$filter=${filter}&$top=50&$select=id,serialNumber,state`);
      } else {
        const filter = encodeURIComponent(`startswith(serialNumber,'SOAK-${n}-')`);
        await call('list registered', 'GET', `${REGISTERED}?$filter=${filter}&$top=20&$count=true`);
      }
    }
  }

  const started = Date.now();
  const samples: [number, number][] = [[0, rssMb(pid)]];
  const sampler = setInterval(() => samples.push([(Date.now() - started) / 60_000, rssMb(pid)]), SAMPLE_EVERY_MS);
  const percentile = (xs: number[], p: number) => {
    if (xs.length === 0) return 0;
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  };
  console.log(`soak: ${MINUTES} min on ${PG ? 'PostgreSQL' : 'SQLite'}, ${CONNECTIONS} clients, up to ${DEVICES_PER_CLIENT} devices each, import worker on; RSS at start ${samples[0][1].toFixed(0)} MB`);
  console.log('  time   req/s   p50 ms  p99 ms  errors  RSS MB');
  const reporter = setInterval(() => {
    const elapsed = ((Date.now() - started) / 1000).toFixed(0).padStart(5);
    const rate = (interval.requests / (REPORT_EVERY_MS / 1000)).toFixed(0).padStart(7);
    console.log(
      `  ${elapsed}s ${rate} ${percentile(interval.latencies, 50).toFixed(1).padStart(8)} ${percentile(interval.latencies, 99).toFixed(1).padStart(7)} ${String(interval.errors).padStart(7)} ${rssMb(pid).toFixed(0).padStart(7)}`,
    );
    for (const sample of interval.errorSamples) console.log(`    ${sample}`);
    interval = newStats();
  }, REPORT_EVERY_MS);

  await Promise.all(Array.from({ length: CONNECTIONS }, (_, n) => client(n)));
  clearInterval(reporter);
  clearInterval(sampler);
  const seconds = (Date.now() - started) / 1000;
  samples.push([seconds / 60, rssMb(pid)]);

  // What the worker did with the imports (those still present).
  const completed = await fetch(`${origin}${LIVE}/$count?$filter=${encodeURIComponent("state/deviceImportStatus eq 'complete'")}`, { headers }).then((r) => r.text());
  const pending = await fetch(`${origin}${LIVE}/$count?$filter=${encodeURIComponent("state/deviceImportStatus eq 'unknown'")}`, { headers }).then((r) => r.text());

  const secondHalf = samples.filter(([t]) => t >= seconds / 120);
  const rssSlope = slope(secondHalf);
  const rssStart = samples[0][1];
  const rssEnd = samples[samples.length - 1][1];
  const peak = Math.max(...samples.map(([, y]) => y));
  console.log(`\nsummary (${PG ? 'PostgreSQL' : 'SQLite'}, ${seconds.toFixed(0)} s, ${CONNECTIONS} clients)`);
  console.log(`  requests ${total.requests} (${(total.requests / seconds).toFixed(0)} req/s; p50 ${percentile(total.latencies, 50).toFixed(1)} ms, p99 ${percentile(total.latencies, 99).toFixed(1)} ms)`);
  console.log(`  by operation ${JSON.stringify(Object.fromEntries(total.byOperation))}`);
  console.log(`  errors ${total.errors}`);
  for (const sample of total.errorSamples) console.log(`    ${sample}`);
  console.log(`  imported devices still present: ${completed} complete, ${pending} waiting for the worker`);
  console.log(`  RSS start ${rssStart.toFixed(0)} MB, end ${rssEnd.toFixed(0)} MB, peak ${peak.toFixed(0)} MB`);
  console.log(`  RSS slope over the second half: ${rssSlope >= 0 ? '+' : ''}${rssSlope.toFixed(2)} MB/min (${secondHalf.length} samples, every ${SAMPLE_EVERY_MS / 1000} s)`);

  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
  await database.drop();
  process.exit(total.errors > 0 ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
