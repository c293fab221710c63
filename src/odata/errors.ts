/**
 * The one error catalogue. Every failure a client can see is an {@link ODataError}; `toGraphError` writes Graph's
 * error body and anything that is not an ODataError becomes a generic 500 whose cause is logged, never sent.
 */
export const ERROR_CODES = {
  BadRequest: 400,
  InvalidAuthenticationToken: 401,
  Authorization_RequestDenied: 403,
  ResourceNotFound: 404,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  RequestTimeout: 408,
  Conflict: 409,
  PreconditionFailed: 412,
  RequestEntityTooLarge: 413,
  UnsupportedMediaType: 415,
  ExpectationFailed: 417,
  FailedDependency: 424,
  PreconditionRequired: 428,
  TooManyRequests: 429,
  RequestHeaderFieldsTooLarge: 431,
  InternalServerError: 500,
  NotImplemented: 501,
  ServiceUnavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorDetail {
  code: string;
  message: string;
  target?: string;
}

export class ODataError extends Error {
  readonly status: number;
  /** Extra response headers the error needs (Allow on 405, Retry-After on 429, WWW-Authenticate on 401). */
  headers: Record<string, string> = {};

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly target?: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.status = ERROR_CODES[code];
  }

  withHeader(name: string, value: string): this {
    this.headers[name] = value;
    return this;
  }
}

export const badRequest = (message: string, target?: string, details?: ErrorDetail[]) =>
  new ODataError('BadRequest', message, target, details);
export const notFound = (message: string) => new ODataError('ResourceNotFound', message);
export const notImplemented = (message: string, target?: string) => new ODataError('NotImplemented', message, target);
export const preconditionFailed = (message: string) => new ODataError('PreconditionFailed', message);
export const methodNotAllowed = (method: string, allowed: string[]) =>
  new ODataError('MethodNotAllowed', `The HTTP method '${method}' is not allowed on this resource.`).withHeader(
    'Allow',
    allowed.join(', '),
  );

export interface GraphErrorBody {
  error: {
    code: string;
    message: string;
    target?: string;
    details?: ErrorDetail[];
    innerError: { date: string; 'request-id': string; 'client-request-id': string };
  };
}

/** Graph's `innerError.date` has no fraction and no zone: `yyyy-MM-ddTHH:mm:ss`. */
function graphDate(now: Date): string {
  return now.toISOString().slice(0, 19);
}

export function toGraphError(err: ODataError, requestId: string, clientRequestId: string): GraphErrorBody {
  const body: GraphErrorBody['error'] = { code: err.code, message: err.message } as GraphErrorBody['error'];
  if (err.target !== undefined) body.target = err.target;
  if (err.details !== undefined && err.details.length > 0) body.details = err.details;
  body.innerError = { date: graphDate(new Date()), 'request-id': requestId, 'client-request-id': clientRequestId };
  return { error: body };
}

/** Turns anything thrown into an ODataError; unknown causes become a 500 that says nothing about the cause. */
export function asODataError(err: unknown): { error: ODataError; internal: boolean } {
  if (err instanceof ODataError) return { error: err, internal: false };
  const code = (err as { code?: string } | null)?.code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === '40001' || code === '40P01' || code === '57014') {
    // Lock contention, serialization failure, deadlock or statement timeout: retryable, nothing was changed.
    return {
      error: new ODataError('ServiceUnavailable', 'The service is busy; retry the request.').withHeader('Retry-After', '1'),
      internal: true,
    };
  }
  return { error: new ODataError('InternalServerError', 'An internal server error occurred.'), internal: true };
}
