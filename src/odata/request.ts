import { IncomingHttpHeaders } from 'node:http';
import { JsonFormat, Preferences } from './negotiation';

/** What a controller sees of a request: already authenticated, negotiated and with its body parsed. */
export interface ODataRequest {
  method: string;
  /** Path segments below the service root, percent-decoded. */
  segments: string[];
  rawQuery: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (undefined when there is none). */
  body: unknown;
  /** The raw body text, for non-JSON bodies. */
  rawBody?: Buffer;
  requestId: string;
  clientRequestId: string;
  tenantId: string;
  /** Absolute service root, e.g. http://127.0.0.1:5000/beta */
  serviceRoot: string;
  /** Absolute URL of the addressed resource, without the query. */
  resourceUrl: string;
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
