import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse, STATUS_CODES } from 'node:http';
import { Duplex } from 'node:stream';
import JSON5 from 'json5';
import pino, { Logger } from 'pino';
import { Config } from './config';
import { ImportWorker, startImportWorker } from './autopilot/import-worker';
import { REGISTERED_DEVICE } from './autopilot/registered-device';
import { AutopilotSettingsController } from './controllers/autopilot-settings.controller';
import { DeviceIdentitiesController } from './controllers/device-identities.controller';
import { RegisteredDevicesController } from './controllers/registered-devices.controller';
import { DeviceManagementController } from './controllers/device-management.controller';
import { UploadsController } from './controllers/uploads.controller';
import { Database } from './db/database';
import { ScopedTable } from './db/scoped-table';
import { ImportedWindowsAutopilotDeviceIdentity } from '../entities/ImportedWindowsAutopilotDeviceIdentity';
import { ImportedWindowsAutopilotDeviceIdentityUpload } from '../entities/ImportedWindowsAutopilotDeviceIdentityUpload';
import { WindowsAutopilotDeviceIdentity } from '../entities/WindowsAutopilotDeviceIdentity';
import { WindowsAutopilotSettings } from '../entities/WindowsAutopilotSettings';
import { Binding } from './odata/binding';
import { asODataError, badRequest, methodNotAllowed, ODataError, toGraphError } from './odata/errors';
import { entityType, model, NAMESPACE, TYPE } from './odata/model';
import { checkContentType, checkVersions, JsonFormat, negotiateJson, negotiateMetadata, negotiateText, parsePrefer } from './odata/negotiation';
import { splitQuery } from './odata/query';
import { ODataRequest, Reply } from './odata/request';
import { splitPath } from './odata/resource-path';
import { simulate } from './http/simulation';
import { Router } from './odata/router';
import { Controllers, mounts } from './routes';

/** Request bodies above this are refused with 413 (SPEC §4). */
export const BODY_LIMIT = 4 * 1024 * 1024;

const BODY_METHODS = new Set(['POST', 'PATCH', 'PUT']);

/** Who is calling: the tenant every query is scoped by. Resolved per request by `authenticate`. */
export interface Caller {
  tenantId: string;
}

/** Turns a request into a Caller or throws a 401/403 ODataError. `write` is true for methods that change data. */
export type Authenticate = (req: IncomingMessage, write: boolean) => Promise<Caller>;

/** No authentication: everything belongs to tenant `default`. */
export const anonymous: Authenticate = async () => ({ tenantId: 'default' });

export interface App {
  server: Server;
  db: Database;
  logger: Logger;
  /** The import worker, unless IMPORT_WORKER=off. */
  worker?: ImportWorker;
  close(): Promise<void>;
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > BODY_LIMIT) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT) {
        req.removeAllListeners('data');
        req.pause();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Builds the service: bindings from the CSDL + TypeORM metadata, controllers, routes and the HTTP server. */
export function createApp(
  config: Config,
  db: Database,
  logger: Logger = pino({ level: config.logLevel }),
  authenticate: Authenticate = anonymous,
): App {
  const table = (typeName: string, entity: Function) => new ScopedTable(db, new Binding(entityType(typeName), db.dataSource, entity), entity);
  const uploadsTable = table(TYPE.upload, ImportedWindowsAutopilotDeviceIdentityUpload);
  const devicesTable = table(TYPE.device, ImportedWindowsAutopilotDeviceIdentity);
  const registered = new RegisteredDevicesController(table(REGISTERED_DEVICE, WindowsAutopilotDeviceIdentity));
  const settings = new AutopilotSettingsController(table(`${NAMESPACE}.windowsAutopilotSettings`, WindowsAutopilotSettings), {
    minIntervalMs: config.syncMinIntervalS * 1000,
    durationMs: config.syncDurationMs,
  });
  const controllers: Controllers = {
    deviceManagement: new DeviceManagementController(),
    uploads: new UploadsController(uploadsTable, devicesTable),
    devices: new DeviceIdentitiesController(devicesTable),
    registered,
    settings,
  };
  const router = new Router(model(), mounts(controllers));
  // Imports are processed in the background; a commit of new devices wakes the worker.
  const worker = config.importWorker.enabled ? startImportWorker(db, logger, config.importWorker) : undefined;
  if (worker) controllers.devices.onCreated = worker.kick;
  const simulating = config.simulation.faultRate > 0 || config.simulation.latency !== undefined;
  const metadataJson = JSON.stringify(model().json);

  function send(res: ServerResponse, status: number, headers: Record<string, string>, body?: string | Buffer) {
    if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
    res.writeHead(status, headers);
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string, clientRequestId: string): Promise<number> {
    const url = req.url ?? '/';
    const qIndex = url.indexOf('?');
    const pathname = qIndex < 0 ? url : url.slice(0, qIndex);
    const rawQuery = qIndex < 0 ? '' : url.slice(qIndex + 1);
    const method = (req.method ?? 'GET').toUpperCase();
    const base: Record<string, string> = { 'OData-Version': '4.0', 'request-id': requestId, 'client-request-id': clientRequestId };

    if (pathname === '/health' || pathname === '/ready') {
      // Not ready while the database is unavailable: 503 with Retry-After (the liveness check /health stays 200).
      if (pathname === '/ready') await db.ready();
      send(res, 200, { ...base, 'Content-Type': 'application/json' }, JSON.stringify({ status: 'ok' }));
      return 200;
    }

    const root = config.basePath;
    if (pathname !== root && !pathname.startsWith(`${root}/`)) {
      throw new ODataError('ResourceNotFound', `Nothing is served at '${pathname.slice(0, 100)}'; the service root is '${root || '/'}'.`);
    }
    checkVersions(header(req, 'odata-version'), header(req, 'odata-maxversion'));
    const segments = splitPath(pathname.slice(root.length));
    const host = config.publicUrl ?? `http://${req.headers.host ?? `${config.host}:${config.port}`}`;
    const serviceRoot = `${host}${root}`;
    const options = splitQuery(rawQuery);
    const format = options.get('format')?.value;

    if (segments.length === 0 || (segments.length === 1 && segments[0].toLowerCase() === '$metadata')) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method, ['GET', 'HEAD']);
      if (segments.length === 0) {
        const json = negotiateJson(header(req, 'accept'), format);
        const value = router.singletons().map((name) => ({ name, kind: 'Singleton', url: name }));
        send(res, 200, { ...base, 'Content-Type': json.contentType }, JSON.stringify({ '@odata.context': `${serviceRoot}/$metadata`, value }));
        return 200;
      }
      const kind = negotiateMetadata(header(req, 'accept'), format);
      if (kind === 'xml') send(res, 200, { ...base, 'Content-Type': 'application/xml' }, model().xml);
      else send(res, 200, { ...base, 'Content-Type': 'application/json' }, metadataJson);
      return 200;
    }
    if (segments[0].toLowerCase() === '$batch') throw new ODataError('NotImplemented', '$batch is not supported by this service yet.');

    const { tenantId } = await authenticate(req, method !== 'GET' && method !== 'HEAD');
    const route = router.resolve(segments);
    if (!route) throw new ODataError('ResourceNotFound', `Resource not found for '${pathname}'.`);
    if (simulating) await simulate(config.simulation);
    // HEAD is GET without the body (Node drops the body of a HEAD response).
    const handler = route.methods.get(method) ?? (method === 'HEAD' ? route.methods.get('GET') : undefined);
    if (!handler) {
      const allowed = [...route.methods.keys()];
      throw methodNotAllowed(method, allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed);
    }

    const jsonFormat = route.rawValue ? rawValueFormat(header(req, 'accept'), format) : negotiateJson(header(req, 'accept'), format);
    let body: unknown;
    const raw = BODY_METHODS.has(method) ? await readBody(req) : Buffer.alloc(0);
    // A handler that takes a body needs one; to others a body is optional (an action without parameters: none or `{}`).
    if (handler.body || raw.length > 0) {
      const mediaType = checkContentType(header(req, 'content-type'), ['application/json', ...handler.otherMediaTypes]);
      if (raw.length === 0) throw badRequest(`The request body is empty; ${mediaType === 'application/json' ? 'a JSON object' : mediaType} is expected.`);
      if (mediaType === 'application/json') {
        body = parseJsonBody(raw);
        checkDepth(body);
      }
    }

    const ctx: ODataRequest = {
      method,
      rawQuery,
      headers: req.headers,
      body,
      rawBody: raw,
      requestId,
      clientRequestId,
      tenantId,
      serviceRoot,
      resourceUrl: `${host}${pathname}`,
      target: { contextPath: route.resource.contextPath },
      pageSize: { default: config.defaultPageSize, max: config.maxPageSize },
      prefer: parsePrefer(header(req, 'prefer')),
      format: jsonFormat,
    };
    const { mount, resource } = route;
    const scope = mount.scope ? await mount.scope(ctx, resource.parentKeys) : { columns: { tenantId } };
    const key = resource.key ?? (resource.single && mount.key ? await mount.key(ctx, scope) : undefined);
    const reply: Reply = await handler.invoke(mount.controller, ctx, scope, key);
    const headers: Record<string, string> = { ...base, ...reply.headers };
    if (reply.json !== undefined) {
      headers['Content-Type'] = jsonFormat.contentType;
      send(res, reply.status, headers, JSON.stringify(reply.json));
    } else if (reply.text !== undefined) {
      headers['Content-Type'] = reply.contentType ?? 'text/plain';
      send(res, reply.status, headers, reply.text);
    } else send(res, reply.status, headers);
    return reply.status;
  }

  // Requests whose handler is still running: close() waits for them before closing the database, since a client
  // that hangs up does not stop its request's work.
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const finished = () => {
    inFlight--;
    if (inFlight === 0) drained?.();
  };

  const server = createServer((req, res) => {
    inFlight++;
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    const clientRequestId = header(req, 'client-request-id')?.slice(0, 200) || requestId;
    const done = (status: number) =>
      logger.info(
        { requestId, clientRequestId, method: req.method, url: req.url?.split('?')[0], status, ms: Number(process.hrtime.bigint() - started) / 1e6 },
        'request',
      );
    handle(req, res, requestId, clientRequestId).then(done, (err: unknown) => {
      sendError(err);
    }).finally(finished);
    const sendError = (err: unknown) => {
      let error: ODataError;
      if (err instanceof BodyTooLarge) {
        error = new ODataError('RequestEntityTooLarge', `The request body exceeds the limit of ${BODY_LIMIT} bytes.`);
        res.setHeader('Connection', 'close');
      } else {
        const mapped = asODataError(err);
        error = mapped.error;
        if (mapped.internal) logger.error({ requestId, err }, 'request failed');
      }
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      try {
        const body = JSON.stringify(toGraphError(error, requestId, clientRequestId));
        send(res, error.status, { ...errorHeaders(requestId, clientRequestId), ...error.headers }, body);
      } catch (sendError) {
        logger.error({ requestId, err: sendError }, 'error response failed');
        res.destroy();
      }
      done(error.status);
    };
  });

  // Requests node's parser rejects (malformed, oversized headers, timeouts) get Graph's error shape too, not a bare status line.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const pending = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
      socket.destroy();
      return;
    }
    const requestId = randomUUID();
    const error =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? new ODataError('RequestHeaderFieldsTooLarge', 'The request headers are too large.')
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new ODataError('RequestTimeout', 'The request was not received in time.')
          : badRequest('The request is not a valid HTTP/1.1 request.');
    const body = JSON.stringify(toGraphError(error, requestId, requestId));
    const headers = { ...errorHeaders(requestId, requestId), 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' };
    const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.end(`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n${head}\r\n${body}`);
    logger.info({ requestId, status: error.status, err: err.code }, 'client error');
  });
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 30000;
  server.headersTimeout = 10000;

  return {
    server,
    db,
    logger,
    worker,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      await worker?.stop();
      await db.close();
    },
  };
}

/** JSON nesting allowed in a request body (System.Text.Json's default). Deeper bodies overflowed the stack in payload validation (a 500). */
export const MAX_BODY_DEPTH = 64;

function checkDepth(value: unknown): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth > MAX_BODY_DEPTH) throw badRequest(`The request body nests deeper than ${MAX_BODY_DEPTH} levels.`);
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
}

function errorHeaders(requestId: string, clientRequestId: string): Record<string, string> {
  return {
    'OData-Version': '4.0',
    'request-id': requestId,
    'client-request-id': clientRequestId,
    'Content-Type': 'application/json',
    'Content-Language': 'en',
  };
}

/** A raw value is text/plain; the JSON format is still handed to the handler, for its errors' sake. */
function rawValueFormat(accept: string | undefined, format: string | undefined): JsonFormat {
  negotiateText(accept, format);
  return { noMetadata: false, ieee754: false, contentType: 'application/json;odata.metadata=minimal' };
}

/** A JSON body; Graph also takes lenient JSON (member names without quotes, as the community PowerShell module sends), read by json5. */
function parseJsonBody(raw: Buffer): unknown {
  const text = raw.toString('utf8').replace(/^\uFEFF/, '');
  try {
    return JSON.parse(text);
  } catch (err) {
    try {
      return JSON5.parse(text);
    } catch {
      throw badRequest(`The request body is not valid JSON: ${(err as Error).message}.`);
    }
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
