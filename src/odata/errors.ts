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

  /** `cause`: what went wrong underneath (a database error), logged with the request, never sent. */
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly target?: string,
    readonly details?: ErrorDetail[],
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
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

/**
 * Turns anything thrown into an ODataError; unknown causes become a 500 that says nothing about the cause. `internal`:
 * the cause is worth logging (a 500, or an error with a `cause` such as the database's 503s, src/db/database.ts).
 */
export function asODataError(err: unknown): { error: ODataError; internal: boolean } {
  if (err instanceof ODataError) return { error: err, internal: err.cause !== undefined };
  return { error: new ODataError('InternalServerError', 'An internal server error occurred.'), internal: true };
}
