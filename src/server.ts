import { EntityTarget, ObjectLiteral } from 'typeorm';
import { randomUUID } from 'node:crypto';
import { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse, STATUS_CODES } from 'node:http';
import { Duplex } from 'node:stream';
import pino, { Logger } from 'pino';
import { anonymous, Authenticate } from './auth/caller';
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
import { entityType, model, NAMESPACE } from './odata/model';
import { TYPE } from './autopilot/graph-types';
import { checkContentType, checkVersions, JsonFormat, negotiateJson, negotiateMetadata, negotiateText, parsePrefer } from './odata/negotiation';
import { splitQuery } from './odata/query';
import { BatchProcessor } from './odata/batch';
import { checkDepth, parseJsonBody } from './odata/json-body';
import { Incoming, ODataRequest, Reply } from './odata/request';
import { splitPath } from './odata/resource-path';
import { simulate } from './http/simulation';
import { Router } from './odata/router';
import { Controllers, mounts } from './routes';
import { createDocs } from './http/docs';
import { publicOrigin } from './http/origin';
import { createListener } from './http/tls';

/** Request bodies above this are refused with 413 (SPEC §4). */
export const BODY_LIMIT = 4 * 1024 * 1024;

const BODY_METHODS = new Set(['POST', 'PATCH', 'PUT']);

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
  const table = (typeName: string, entity: EntityTarget<ObjectLiteral>) => new ScopedTable(db, new Binding(entityType(typeName), db.dataSource, entity), entity);
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
  if (worker) controllers.devices.onCreated = () => worker.kick();
  const simulating = config.simulation.faultRate > 0 || config.simulation.latency !== undefined;
  const metadataJson = JSON.stringify(model().json);
  const docs = createDocs(config);

  function send(res: ServerResponse, status: number, headers: Record<string, string>, body?: string | Buffer) {
    if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
    res.writeHead(status, headers);
    res.end(body);
  }

  /** Any failure as Graph's error reply; causes that are not an ODataError are logged and answered with a bare 500/503. */
  function errorReply(err: unknown, requestId: string, clientRequestId: string): Reply {
    let error: ODataError;
    if (err instanceof BodyTooLarge) {
      error = new ODataError('RequestEntityTooLarge', `The request body exceeds the limit of ${BODY_LIMIT} bytes.`).withHeader('Connection', 'close');
    } else {
      const mapped = asODataError(err);
      error = mapped.error;
      if (mapped.internal) logger.error({ requestId, err }, 'request failed');
    }
    return {
      status: error.status,
      headers: { 'Content-Language': 'en', ...error.headers },
      json: toGraphError(error, requestId, clientRequestId),
      contentType: 'application/json',
    };
  }

  /**
   * The whole pipeline for one request, from a socket or from a batch part: service root, versions, the service
   * document, $metadata and $batch, then authentication (with throttling), routing, negotiation, the body, the
   * scope and the handler. Never throws: a failure is Graph's error reply.
   */
  async function dispatch(req: Incoming): Promise<Reply> {
    try {
      return await serve(req);
    } catch (err) {
      return errorReply(err, req.requestId, req.clientRequestId);
    }
  }

  async function serve(req: Incoming): Promise<Reply> {
    const qIndex = req.url.indexOf('?');
    const pathname = qIndex < 0 ? req.url : req.url.slice(0, qIndex);
    const rawQuery = qIndex < 0 ? '' : req.url.slice(qIndex + 1);
    const method = req.method.toUpperCase();

    const root = config.basePath;
    if (pathname !== root && !pathname.startsWith(`${root}/`)) {
      throw new ODataError('ResourceNotFound', `Nothing is served at '${pathname.slice(0, 100)}'; the service root is '${root || '/'}'.`);
    }
    checkVersions(header(req, 'odata-version'), header(req, 'odata-maxversion'));
    const segments = splitPath(pathname.slice(root.length));
    const serviceRoot = `${req.origin}${root}`;
    const options = splitQuery(rawQuery);
    const format = options.get('format')?.value;

    if (segments.length === 0 || (segments.length === 1 && segments[0].toLowerCase() === '$metadata')) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method, ['GET', 'HEAD']);
      if (segments.length === 0) {
        const json = negotiateJson(header(req, 'accept'), format);
        const value = router.singletons().map((name) => ({ name, kind: 'Singleton', url: name }));
        return { status: 200, json: { '@odata.context': `${serviceRoot}/$metadata`, value }, contentType: json.contentType };
      }
      const kind = negotiateMetadata(header(req, 'accept'), format);
      return kind === 'xml' ? { status: 200, text: model().xml, contentType: 'application/xml' } : { status: 200, text: metadataJson, contentType: 'application/json' };
    }
    if (segments.length === 1 && segments[0].toLowerCase() === '$batch') {
      if (req.inBatch) throw badRequest('A request inside a batch cannot itself be a batch request.');
      if (method !== 'POST') throw methodNotAllowed(method, ['POST']);
      // The batch itself needs a valid token (as on Graph); each part is then authorised on its own.
      await authenticate(req, false);
      return batch.serve(req, await req.body());
    }

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
    const raw = BODY_METHODS.has(method) ? await req.body() : Buffer.alloc(0);
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
      requestId: req.requestId,
      clientRequestId: req.clientRequestId,
      tenantId,
      serviceRoot,
      resourceUrl: `${req.origin}${pathname}`,
      target: { contextPath: route.resource.contextPath },
      pageSize: { default: config.defaultPageSize, max: config.maxPageSize },
      prefer: parsePrefer(header(req, 'prefer')),
      format: jsonFormat,
    };
    const { mount, resource } = route;
    const scope = mount.scope ? await mount.scope(ctx, resource.parentKeys) : { columns: { tenantId } };
    const key = resource.key ?? (resource.single && mount.key ? await mount.key(ctx, scope) : undefined);
    const reply: Reply = await handler.invoke(mount.controller, ctx, scope, key);
    if (reply.json !== undefined) return { ...reply, contentType: jsonFormat.contentType };
    if (reply.text !== undefined) return { ...reply, contentType: reply.contentType ?? 'text/plain' };
    return reply;
  }

  const batch = new BatchProcessor({ root: config.basePath, dispatch, atomic: (fn) => db.atomic(fn), errorReply });

  /** The HTTP edge: health probes, then the pipeline; writes the reply with the protocol headers every response carries. */
  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string, clientRequestId: string): Promise<number> {
    const url = req.url ?? '/';
    const pathname = url.split('?')[0];
    const base: Record<string, string> = { 'OData-Version': '4.0', 'request-id': requestId, 'client-request-id': clientRequestId };
    let reply: Reply | undefined;
    try {
      // The API page (/docs) is served outside the service root, without a token.
      const page = docs(req, pathname, (req.method ?? 'GET').toUpperCase());
      if (page) {
        send(res, page.status, { ...base, ...page.headers }, page.body);
        return page.status;
      }
    } catch (err) {
      reply = errorReply(err, requestId, clientRequestId);
    }
    // HTTP/1.1 requires Host (RFC 9112 §3.2).
    if (!reply && req.headers.host === undefined && req.httpVersion !== '1.0') {
      reply = errorReply(badRequest('The request has no Host header.', 'Host'), requestId, clientRequestId);
    }
    if (!reply && (pathname === '/health' || pathname === '/ready')) {
      try {
        // Not ready while the database is unavailable: 503 with Retry-After (the liveness check /health stays 200).
        if (pathname === '/ready') await db.ready();
        reply = { status: 200, json: { status: 'ok' }, contentType: 'application/json' };
      } catch (err) {
        reply = errorReply(err, requestId, clientRequestId);
      }
    }
    reply ??= await dispatch({
      method: req.method ?? 'GET',
      url,
      headers: req.headers,
      body: () => readBody(req),
      origin: publicOrigin(config, req),
      requestId,
      clientRequestId,
    });
    if (res.destroyed) return reply.status; // the client hung up; its request's work is done all the same
    const headers: Record<string, string> = { ...base, ...reply.headers };
    if (reply.contentType !== undefined) headers['Content-Type'] = reply.contentType;
    send(res, reply.status, headers, reply.json !== undefined ? JSON.stringify(reply.json) : reply.text);
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

  const server = createListener(config.tls, (req, res) => {
    inFlight++;
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    const clientRequestId = header(req, 'client-request-id')?.slice(0, 200) || requestId;
    const done = (status: number) =>
      logger.info(
        { requestId, clientRequestId, method: req.method, url: req.url?.split('?')[0], status, ms: Number(process.hrtime.bigint() - started) / 1e6 },
        'request',
      );
    handle(req, res, requestId, clientRequestId)
      .then(done, (err: unknown) => {
        // Only writing the reply can fail here (the pipeline answers its own failures): the connection is unusable.
        logger.error({ requestId, err }, 'response failed');
        res.destroy();
        done(500);
      })
      .finally(finished);
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
    // The answer to a HEAD has no body (RFC 9110 §9.3.2): clients parse what follows as a protocol error. The method is
    // known when the rejected bytes start with the request line, as they do when one read holds the whole header.
    const rawPacket = (err as NodeJS.ErrnoException & { rawPacket?: Buffer }).rawPacket;
    const isHead = rawPacket?.toString('latin1', 0, 5) === 'HEAD ';
    socket.end(`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n${head}\r\n${isHead ? '' : body}`);
    logger.info({ requestId, status: error.status, err: err.code }, 'client error');
  });
  // An Expect other than 100-continue: node answers 417 with an empty body unless told otherwise.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomUUID();
    const clientRequestId = header(req, 'client-request-id')?.slice(0, 200) || requestId;
    const error = new ODataError('ExpectationFailed', `The expectation '${header(req, 'expect')?.slice(0, 100)}' cannot be met; only 100-continue is supported.`, 'Expect');
    send(res, error.status, errorHeaders(requestId, clientRequestId), JSON.stringify(toGraphError(error, requestId, clientRequestId)));
    logger.info({ requestId, clientRequestId, method: req.method, status: error.status }, 'request');
  });
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
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

function header(req: { headers: IncomingHttpHeaders }, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
