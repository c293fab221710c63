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
  /** A non-JSON body and its content type. */
  text?: string;
  contentType?: string;
}
