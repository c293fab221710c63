import { IncomingHttpHeaders } from 'node:http';
import { JsonFormat, Preferences } from './negotiation';

/** What a handler sees of a request: already authenticated, negotiated and with its body parsed. */
export interface ODataRequest {
  method: string;
  rawQuery: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (undefined when there is none, or when it came in another accepted media type). */
  body: unknown;
  /** The raw body, for non-JSON bodies. */
  rawBody?: Buffer;
  requestId: string;
  clientRequestId: string;
  tenantId: string;
  /** Absolute service root, e.g. http://127.0.0.1:5000/beta */
  serviceRoot: string;
  /** Absolute URL of the addressed resource, without the query. */
  resourceUrl: string;
  /** The addressed collection or entity: its canonical path below the service root (for @odata.context and Location). */
  target: { contextPath: string };
  /** Server-driven paging: the page size without `Prefer: odata.maxpagesize`, and the most it may ask for. */
  pageSize: { default: number; max: number };
  prefer: Preferences;
  format: JsonFormat;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** A JSON body, serialised with the negotiated format. */
  json?: unknown;
  /** A non-JSON body. */
  text?: string;
  /** The body's media type (a handler gives it for `text`; the pipeline sets it for every body it answers). */
  contentType?: string;
}

/**
 * A request as the pipeline takes it, whether it came from a socket or from a part of a batch: method, path and
 * query, headers (lower-case names), and a body read only once the route and the caller are known.
 */
export interface Incoming {
  method: string;
  /** Path and query as sent, e.g. `/beta/deviceManagement/importedWindowsAutopilotDeviceIdentities?$top=2`. */
  url: string;
  headers: IncomingHttpHeaders;
  body(): Promise<Buffer>;
  /** The scheme and host the client reached (`http://127.0.0.1:5000`): service root, @odata.context and Location are built on it. */
  origin: string;
  requestId: string;
  clientRequestId: string;
  /** A part of a batch (which cannot itself be a batch). */
  inBatch?: boolean;
}
