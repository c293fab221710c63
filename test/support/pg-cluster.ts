import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './process';

/**
 * A PostgreSQL cluster of a test's own, on a free port, in a temporary directory: it can be stopped and started
 * without disturbing the shared server other tests use. Made with the binaries installed on the machine
 * (/usr/lib/postgresql/<version>/bin, or PG_BIN); as root (CI) they run as the `postgres` OS user, as initdb refuses root.
 */
export interface PgCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** Fast shutdown: sessions are ended, new connections refused. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP to the server and its backends: connections stay open, nothing is answered. */
  freeze(): Promise<void>;
  /** SIGCONT: the frozen server carries on. */
  thaw(): Promise<void>;
  /** Stops it (immediate shutdown) and removes its directory. */
  destroy(): Promise<void>;
}

/** The directory of initdb and pg_ctl, or undefined. */
function binaries(): string | undefined {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(root, versions[0], 'bin');
}

function run(file: string, args: string[], asUser: string | undefined): Promise<string> {
  const [command, argv] = asUser ? ['runuser', ['-u', asUser, '--', file, ...args]] : [file, args];
  return new Promise((resolve, reject) =>
    execFile(command, argv, { timeout: 120000 }, (err, stdout, stderr) => (err ? reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout))),
  );
}

function uidOf(user: string): Promise<{ uid: number; gid: number }> {
  return new Promise((resolve, reject) =>
    execFile('id', ['-u', user], (err, uid) =>
      err ? reject(new Error(err.message)) : execFile('id', ['-g', user], (err2, gid) => (err2 ? reject(new Error(err2.message)) : resolve({ uid: Number(uid), gid: Number(gid) }))),
    ),
  );
}

/** Why no cluster can be made here, or undefined when one can. */
export function pgClusterUnavailable(): string | undefined {
  if (!binaries()) return 'no PostgreSQL binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin; set PG_BIN';
  if (process.platform === 'win32') return 'PostgreSQL clusters are started with runuser, not available on Windows';
  return undefined;
}

export async function startPgCluster(): Promise<PgCluster> {
  const bin = binaries()!;
  const asUser = process.getuid?.() === 0 ? 'postgres' : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'pg-outage-'));
  if (asUser) {
    const { uid, gid } = await uidOf(asUser);
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const port = await freePort();
  await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], asUser);
  // A throwaway cluster: no fsync, little memory, sockets in its own directory.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c shared_buffers=16MB -c max_connections=40`;
  const pgCtl = (...args: string[]) => run(join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '60', ...args], asUser);
  const start = () => pgCtl('-l', join(dir, 'log'), '-o', options, 'start').then(() => undefined);
  await start();
  // The postmaster's pid is the first line of postmaster.pid; the backends are its children.
  const processes = async () => {
    const postmaster = readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0].trim();
    const children = await new Promise<string>((resolve) => execFile('pgrep', ['-P', postmaster], (_err, stdout) => resolve(stdout)));
    return [postmaster, ...children.split('\n').filter(Boolean)].map(Number);
  };
  const signal = async (name: NodeJS.Signals) => {
    for (const pid of await processes()) process.kill(pid, name);
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    stop: () => pgCtl('-m', 'fast', 'stop').then(() => undefined),
    async destroy() {
      await signal('SIGCONT').catch(() => undefined);
      await pgCtl('-m', 'immediate', 'stop').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
