import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { loadConfig } from '../../src/config';
import { Database } from '../../src/db/database';
import { App, createApp } from '../../src/server';
import { mintToken, setupAuth } from '../../src/auth';
import { trustingFetch } from './https';

/** A response body as JSON, or undefined when it is empty or not JSON. */
export function jsonOrUndefined(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/** The HS256 secret every test service verifies tokens with. */
export const TEST_SECRET = 'test-secret-0123456789abcdef';

/** A token as Entra ID would issue it: `tid` plus a delegated scope (or application roles). */
export function token(tenant = 'default', scope: 'read' | 'write' = 'write', application = false): Promise<string> {
  return mintToken(TEST_SECRET, { tenant, scope, application, expiresIn: '1h' });
}

/**
 * A real service on an ephemeral loopback port, on its own fresh database: in-memory SQLite by default, or the
 * database named by TEST_DATABASE_URL (each call gets a schema of its own there).
 */
export interface TestService {
  app: App;
  /** http://127.0.0.1:PORT (https:// with TLS_CERT/TLS_KEY) */
  origin: string;
  /** http://127.0.0.1:PORT/beta (https:// with TLS_CERT/TLS_KEY) */
  root: string;
  request(method: string, path: string, options?: RequestOptions): Promise<TestResponse>;
  get(path: string, options?: RequestOptions): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** An object/array is sent as JSON with Content-Type application/json; a string is sent as is. */
  body?: unknown;
  /** Send no Authorization header (by default a read-write token for tenant `default` is added). */
  anonymous?: boolean;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body, or undefined. */
  body: any;
}

/**
 * The database a test service runs on: in-memory SQLite, or — when the run has DATABASE_URL=postgres://… (npm run
 * test:pg) — a fresh schema of that PostgreSQL database, so test files never see each other's rows.
 */
export async function freshDatabaseUrl(): Promise<string> {
  const base = process.env.DATABASE_URL;
  if (!base?.startsWith('postgres')) return 'sqlite::memory:';
  const schema = `test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const client = new Client({ connectionString: base });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA "${schema}"`);
  } finally {
    await client.end();
  }
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

/** Drops the schema a freshDatabaseUrl() made (nothing to do on SQLite). */
export async function dropSchema(databaseUrl: string): Promise<void> {
  const schema = /search_path=(test_[a-z0-9_]+)/.exec(decodeURIComponent(databaseUrl))?.[1];
  if (!schema || !process.env.DATABASE_URL) return;
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export async function startService(env: Record<string, string> = {}, databaseUrl?: string): Promise<TestService> {
  if (databaseUrl !== undefined) return startServiceOn(env, databaseUrl);
  // A schema made here and refused at start (a bad setting) is dropped again, not left behind in the test database.
  const fresh = await freshDatabaseUrl();
  return startServiceOn(env, fresh).catch(async (err: unknown) => {
    await dropSchema(fresh);
    throw err;
  });
}

async function startServiceOn(env: Record<string, string>, databaseUrl: string): Promise<TestService> {
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    DATABASE_URL: databaseUrl,
    AUTH_SECRET: TEST_SECRET,
    THROTTLE_READS: '1000000/1',
    THROTTLE_WRITES: '1000000/1',
    // Devices stay `unknown` unless a test runs the import worker (IMPORT_WORKER=on, IMPORT_DELAY_MS=0).
    IMPORT_WORKER: 'off',
    ...env,
  });
  const db = await Database.open(config.databaseUrl);
  const auth = await setupAuth(config);
  const app = createApp(config, db, undefined, auth.authenticate);
  const defaultToken = await token();
  await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
  const { port } = app.server.address() as AddressInfo;
  const origin = `${config.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  // Over TLS, requests trust the service's certificate (and only it).
  const send = config.tls ? trustingFetch(readFileSync(config.tls.certFile)) : fetch;
  const root = `${origin}${config.basePath}`;

  async function request(method: string, path: string, options: RequestOptions = {}): Promise<TestResponse> {
    const headers: Record<string, string> = { ...options.headers };
    if (!options.anonymous && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
      headers.Authorization = `Bearer ${defaultToken}`;
    }
    let body: string | undefined;
    if (options.body !== undefined) {
      if (typeof options.body === 'string') body = options.body;
      else {
        body = JSON.stringify(options.body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
      }
    }
    const url = path.startsWith('http') ? path : `${path.startsWith('/') ? origin : `${root}/`}${path}`;
    const res = await send(url, { method, headers, body });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, body: jsonOrUndefined(text) };
  }

  return {
    app,
    origin,
    root,
    request,
    get: (path, options) => request('GET', path, options),
    close: async () => {
      await app.close();
      await auth.close();
      await dropSchema(databaseUrl);
    },
  };
}

/** Percent-encodes a query string the way a careful client does. */
export function query(options: Record<string, string | number | boolean>): string {
  return Object.entries(options)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
}

export const UPLOADS = 'deviceManagement/importedWindowsAutopilotDeviceIdentityUploads';
export const LIVE = 'deviceManagement/importedWindowsAutopilotDeviceIdentities';
export const DEFAULT_UPLOAD = 'importedWindowsAutopilotDeviceIdentityUpload';
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
