import { IncomingHttpHeaders } from 'node:http';
import { parseMultipartBatch, writeMultipartBatch } from './batch-multipart';
import { badRequest, ODataError } from './errors';
import { checkDepth, parseJsonBody } from './json-body';
import { parsePrefer } from './negotiation';
import { Incoming, Reply } from './request';

/**
 * `POST /$batch` (OData 4.01 Part 1 §11.7, JSON Format §19): the JSON and the multipart format read into one list of
 * {@link BatchPart}s, run in order through the same pipeline as direct requests (each part authenticated, throttled,
 * validated and negotiated on its own), and written back in the format of the request. Atomicity groups and change
 * sets run in one database transaction (`Database.atomic`); `dependsOn` and `$<id>` references chain requests.
 */

/** Graph's limit on the requests of one batch (change-set members included). */
export const MAX_BATCH_REQUESTS = 20;

/** The methods a batch part may use (JSON Format §19.1). */
export const BATCH_METHODS = new Set(['GET', 'POST', 'PATCH', 'PUT', 'DELETE']);

/** One request of a batch, whatever its format. */
export interface BatchPart {
  /** JSON `id` / multipart `Content-ID` (optional outside change sets). */
  id?: string;
  method: string;
  url: string;
  /** Header names lower-case. */
  headers: Record<string, string>;
  body: Buffer;
  dependsOn: string[];
  /** The JSON `atomicityGroup`, or the multipart change set (named by its boundary). */
  group?: string;
  /** Where the part is, for messages: `requests[2]`, `part 3`. */
  where: string;
}

export interface PartResult {
  part: BatchPart;
  reply: Reply;
  /** The path and query the part was dispatched to (unset when it was not run). */
  target?: string;
}

/** What one step of a batch produced: a request's reply, or an atomicity group's (all 2xx, or rolled back). */
export type BatchUnit =
  | { kind: 'request'; result: PartResult }
  | { kind: 'group'; group: string; results: PartResult[]; failed?: PartResult };

export interface BatchDeps {
  /** The service root path (`/beta`). */
  root: string;
  /** The request pipeline; never throws. */
  dispatch(req: Incoming): Promise<Reply>;
  atomic<T>(fn: () => Promise<T>): Promise<T>;
  errorReply(err: unknown, requestId: string, clientRequestId: string): Reply;
}

/** A `$name` first segment that names one of these is the system resource, not a reference to a request (Part 1 §11.7.3). */
const SYSTEM_RESOURCES = new Set(['$batch', '$crossjoin', '$all', '$entity', '$root', '$id', '$metadata']);

/** Thrown inside an atomicity group to roll it back; caught right outside it. */
class Rollback extends Error {}
const ROLLBACK = new Rollback('rollback');

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const clip = (s: string) => (s.length > 100 ? `${s.slice(0, 100)}…` : s);
const ok = (reply: Reply) => reply.status >= 200 && reply.status < 300;
const failed = (reply: Reply) => reply.status >= 400;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The request id a URL refers to with a leading `$<id>` segment, if it does. */
export function referenceOf(url: string): string | undefined {
  const m = /^\$([^/?]+)/.exec(url);
  if (!m || SYSTEM_RESOURCES.has(`$${m[1].toLowerCase()}`)) return undefined;
  return m[1];
}

/**
 * A part's URL as a path below the origin: relative to the service root (`deviceManagement/…`), an absolute path with
 * the root (`/beta/deviceManagement/…`, as the Graph JS client sends) or without it (`/deviceManagement/…`, as Graph
 * documents), or an absolute http(s) URL of this service's host.
 */
export function resolvePartUrl(url: string, origin: string, root: string): string {
  let path = url;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw badRequest(`The request URL '${clip(url)}' is not a valid URL.`);
    }
    if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.host.toLowerCase() !== new URL(origin).host.toLowerCase()) {
      throw badRequest(`The request URL '${clip(url)}' does not address this service (${origin}${root}).`);
    }
    path = `${parsed.pathname}${parsed.search}`;
  }
  if (!path.startsWith('/')) return `${root}/${path}`;
  const underRoot = root === '' || path === root || path.startsWith(`${root}/`) || path.startsWith(`${root}?`);
  return underRoot ? path : `${root}${path}`;
}

/**
 * Rules that hold for the batch as a whole (else 400, nothing run): at most {@link MAX_BATCH_REQUESTS} requests,
 * unique ids, an atomicity group's requests adjacent, `dependsOn` and `$<id>` only towards earlier requests.
 */
export function checkParts(parts: BatchPart[]): void {
  if (parts.length > MAX_BATCH_REQUESTS) throw tooMany(parts.length);
  const ids = new Set<string>();
  const groups = new Set<string>();
  let previous: string | undefined;
  for (const part of parts) {
    if (part.group !== undefined && part.group !== previous) {
      if (groups.has(part.group)) throw badRequest(`${part.where}: the requests of atomicity group '${part.group}' must be adjacent.`);
      if (ids.has(part.group)) throw badRequest(`${part.where}: '${part.group}' names both a request and an atomicity group.`);
      groups.add(part.group);
    }
    previous = part.group;
    if (part.id !== undefined) {
      if (ids.has(part.id)) throw badRequest(`${part.where}: the request id '${part.id}' is used twice.`);
      if (groups.has(part.id)) throw badRequest(`${part.where}: '${part.id}' names both a request and an atomicity group.`);
    }
    for (const dep of part.dependsOn) {
      if (!ids.has(dep) && !(groups.has(dep) && dep !== part.group)) {
        throw badRequest(`${part.where}: dependsOn names '${dep}', which is not an earlier request or atomicity group.`);
      }
    }
    const ref = referenceOf(part.url);
    if (ref !== undefined && !ids.has(ref)) throw badRequest(`${part.where}: the URL refers to '$${ref}', which is not an earlier request.`);
    if (part.id !== undefined) ids.add(part.id);
  }
}

const tooMany = (n: number) => badRequest(`A batch holds at most ${MAX_BATCH_REQUESTS} requests; this one has ${n}.`);

/**
 * 406 unless Accept (when given) allows the media type the batch is answered in: the request's own format, or one of
 * `tolerated` (a multipart batch tolerates `application/json`: OData clients such as @odata/client send that Accept on
 * every request, batches included, and read the multipart answer an OData 4.0 service gives a multipart batch).
 */
function checkAccept(accept: string | undefined, produced: string, tolerated: string[] = []): void {
  if (!accept) return;
  const major = produced.split('/')[0];
  const allowed = accept.split(',').some((range) => {
    const [type, ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) return false;
    return type === produced || type === '*/*' || type === `${major}/*` || tolerated.includes(type);
  });
  if (!allowed) throw new ODataError('NotAcceptable', `This batch is answered as ${produced}, the format it was sent in; the Accept header (${clip(accept)}) does not allow it.`);
}

export class BatchProcessor {
  constructor(private readonly deps: BatchDeps) {}

  /** Answers a `POST $batch` whose body is `raw`: 200 with every part's response, or 4xx for a malformed batch. */
  async serve(req: Incoming, raw: Buffer): Promise<Reply> {
    const contentType = header(req.headers, 'content-type');
    const mediaType = contentType?.split(';')[0].trim().toLowerCase();
    const prefer = parsePrefer(header(req.headers, 'prefer'));
    if (mediaType === 'application/json') {
      checkAccept(header(req.headers, 'accept'), 'application/json');
      const parts = parseJsonBatch(raw);
      checkParts(parts);
      // JSON batches go on after a failure unless told otherwise (JSON Format §19.4), as Graph does.
      const units = await this.execute(req, parts, prefer.continueOnError ?? true);
      return { status: 200, json: jsonBatchResponse(units), contentType: 'application/json' };
    }
    if (mediaType === 'multipart/mixed') {
      checkAccept(header(req.headers, 'accept'), 'multipart/mixed', ['application/json']);
      const parts = parseMultipartBatch(contentType!, raw);
      checkParts(parts);
      // A multipart batch stops at its first failure unless the client prefers continue-on-error (Part 1 §11.7.7.4).
      const units = await this.execute(req, parts, prefer.continueOnError ?? false);
      const { contentType: type, text } = writeMultipartBatch(units);
      return { status: 200, text, contentType: type };
    }
    throw new ODataError(
      'UnsupportedMediaType',
      contentType
        ? `The media type '${mediaType}' is not a batch format; send application/json or multipart/mixed.`
        : 'A batch needs a Content-Type header: application/json or multipart/mixed.',
    );
  }

  /** Runs the parts in order; returns what each request or atomicity group produced (up to the first failure, unless continuing). */
  private async execute(req: Incoming, parts: BatchPart[], continueOnError: boolean): Promise<BatchUnit[]> {
    // Outcome by request id and by group name: success (2xx), and the URL of the entity it created or returned.
    const outcomes = new Map<string, { ok: boolean; entityUrl?: string }>();
    const record = (result: PartResult) => {
      if (result.part.id !== undefined) outcomes.set(result.part.id, { ok: ok(result.reply), entityUrl: ok(result.reply) ? entityUrlOf(result, req.origin) : undefined });
    };
    const failedDependency = (part: BatchPart, message: string): PartResult => ({
      part,
      reply: this.deps.errorReply(new ODataError('FailedDependency', message), req.requestId, req.clientRequestId),
    });
    const units: BatchUnit[] = [];

    for (let i = 0; i < parts.length; ) {
      const group = parts[i].group;
      if (group === undefined) {
        const result = await this.run(req, parts[i], outcomes, failedDependency);
        record(result);
        units.push({ kind: 'request', result });
        i++;
        if (failed(result.reply) && !continueOnError) break;
        continue;
      }

      let end = i;
      while (end < parts.length && parts[end].group === group) end++;
      const members = parts.slice(i, end);
      i = end;
      let results: PartResult[] = [];
      let failure: PartResult | undefined;
      const inGroup = new Set(members.flatMap((m) => (m.id === undefined ? [] : [m.id])));
      const unmet = members.flatMap((m) => m.dependsOn).find((dep) => !inGroup.has(dep) && !outcomes.get(dep)?.ok);
      if (unmet !== undefined) {
        // A dependency outside the group failed: the whole group fails, untried.
        results = members.map((m) => failedDependency(m, `The atomicity group '${group}' depends on '${unmet}', which failed.`));
        failure = results[0];
      } else {
        try {
          await this.deps.atomic(async () => {
            for (const member of members) {
              const result = await this.run(req, member, outcomes, failedDependency);
              results.push(result);
              if (failed(result.reply)) {
                failure = result;
                throw ROLLBACK;
              }
              record(result); // later members may depend on it, or refer to what it created
            }
          });
        } catch (err) {
          if (err !== ROLLBACK) {
            // The commit itself failed (contention, a lost connection): nothing of the group was applied.
            const reply = this.deps.errorReply(err, req.requestId, req.clientRequestId);
            results = members.map((part) => ({ part, reply }));
            failure = results[0];
          }
        }
        if (failure) {
          const cause = failure;
          const culprit = cause.part.id === undefined ? cause.part.where : `request '${cause.part.id}'`;
          results = members.map((m) =>
            m === cause.part ? cause : failedDependency(m, `The atomicity group '${group}' was rolled back: ${culprit} failed with ${cause.reply.status}.`),
          );
        }
      }
      for (const result of results) {
        if (result.part.id !== undefined) outcomes.set(result.part.id, failure ? { ok: false } : (outcomes.get(result.part.id) ?? { ok: true }));
      }
      outcomes.set(group, { ok: !failure });
      units.push({ kind: 'group', group, results, failed: failure });
      if (failure && !continueOnError) break;
    }
    return units;
  }

  /** One part through the pipeline: 424 when a request it depends on (or refers to) failed; `$<id>` replaced by that entity's URL. */
  private async run(
    req: Incoming,
    part: BatchPart,
    outcomes: Map<string, { ok: boolean; entityUrl?: string }>,
    failedDependency: (part: BatchPart, message: string) => PartResult,
  ): Promise<PartResult> {
    const ref = referenceOf(part.url);
    const unmet = [...part.dependsOn, ...(ref === undefined ? [] : [ref])].find((dep) => !outcomes.get(dep)?.ok);
    if (unmet !== undefined) return failedDependency(part, `The request depends on '${unmet}', which failed.`);
    let target: string;
    try {
      let url = part.url;
      if (ref !== undefined) {
        const entityUrl = outcomes.get(ref)!.entityUrl;
        if (entityUrl === undefined) throw badRequest(`'$${ref}' refers to request '${ref}', which returned no entity.`);
        url = entityUrl + url.slice(ref.length + 1);
      }
      target = resolvePartUrl(url, req.origin, this.deps.root);
    } catch (err) {
      return { part, reply: this.deps.errorReply(err, req.requestId, req.clientRequestId) };
    }
    const headers: IncomingHttpHeaders = { ...part.headers };
    // A part without credentials of its own acts with the batch's.
    if (headers.authorization === undefined && req.headers.authorization !== undefined) headers.authorization = req.headers.authorization;
    const reply = await this.deps.dispatch({
      method: part.method,
      url: target,
      headers,
      body: () => Promise.resolve(part.body),
      origin: req.origin,
      requestId: req.requestId,
      clientRequestId: req.clientRequestId,
      inBatch: true,
    });
    return { part, reply, target };
  }
}

/** The URL of the entity a successful request created (Location) or returned (a single entity), for `$<id>` references. */
function entityUrlOf(result: PartResult, origin: string): string | undefined {
  const location = result.reply.headers?.Location;
  if (location) return location;
  const json = result.reply.json;
  if (result.target !== undefined && isObject(json) && typeof json.id === 'string' && !('value' in json)) return origin + result.target.split('?')[0];
  return undefined;
}

// ---- JSON format (JSON Format §19) ----

const JSON_MEMBERS = new Set(['id', 'method', 'url', 'headers', 'body', 'dependsOn', 'atomicityGroup']);

/** The requests of a JSON batch `{"requests":[…]}`; 400 for anything malformed. */
export function parseJsonBatch(raw: Buffer): BatchPart[] {
  if (raw.length === 0) throw badRequest('The batch body is empty; a JSON object with a "requests" array is expected.');
  const envelope = parseJsonBody(raw);
  checkDepth(envelope);
  if (!isObject(envelope)) throw badRequest('A JSON batch is an object with a "requests" array.');
  for (const key of Object.keys(envelope)) {
    if (key !== 'requests' && !key.startsWith('@')) throw badRequest(`Unexpected member '${key}' in a JSON batch; it holds "requests".`, key);
  }
  const requests = envelope.requests;
  if (!Array.isArray(requests)) throw badRequest('A JSON batch needs a "requests" array.', 'requests');
  if (requests.length > MAX_BATCH_REQUESTS) throw tooMany(requests.length);
  return requests.map((item, i) => jsonPart(item, `requests[${i}]`));
}

function jsonPart(item: unknown, where: string): BatchPart {
  if (!isObject(item)) throw badRequest(`${where} must be an object.`, where);
  if ('if' in item) throw badRequest(`${where}.if: conditional requests are not supported; use dependsOn.`, `${where}.if`);
  for (const key of Object.keys(item)) {
    if (!JSON_MEMBERS.has(key) && !key.startsWith('@')) throw badRequest(`${where} has an unknown member '${key}'.`, `${where}.${key}`);
  }
  const { id, method, url, headers, body, dependsOn, atomicityGroup } = item;
  if (typeof id !== 'string' || id === '') throw badRequest(`${where}.id must be a non-empty string.`, `${where}.id`);
  if (typeof method !== 'string' || !BATCH_METHODS.has(method.toUpperCase())) {
    throw badRequest(`${where}.method must be one of GET, POST, PATCH, PUT or DELETE.`, `${where}.method`);
  }
  if (typeof url !== 'string' || url === '') throw badRequest(`${where}.url must be a non-empty string.`, `${where}.url`);
  const lowerHeaders: Record<string, string> = {};
  if (headers !== undefined && headers !== null) {
    if (!isObject(headers)) throw badRequest(`${where}.headers must be an object of header names and string values.`, `${where}.headers`);
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value !== 'string') throw badRequest(`${where}.headers['${name}'] must be a string.`, `${where}.headers`);
      lowerHeaders[name.toLowerCase()] = value;
    }
  }
  let deps: string[] = [];
  if (dependsOn !== undefined && dependsOn !== null) {
    if (!Array.isArray(dependsOn) || dependsOn.some((d) => typeof d !== 'string')) {
      throw badRequest(`${where}.dependsOn must be an array of request ids.`, `${where}.dependsOn`);
    }
    deps = dependsOn as string[];
  }
  if (atomicityGroup !== undefined && atomicityGroup !== null && (typeof atomicityGroup !== 'string' || atomicityGroup === '')) {
    throw badRequest(`${where}.atomicityGroup must be a non-empty string.`, `${where}.atomicityGroup`);
  }
  const verb = method.toUpperCase();
  let raw: Buffer = Buffer.alloc(0);
  if (body !== undefined && body !== null) {
    if (verb === 'GET' || verb === 'DELETE') throw badRequest(`${where}: a ${verb} request has no body.`, `${where}.body`);
    raw = encodeBody(body, lowerHeaders['content-type'], where);
  }
  return { id, method: verb, url, headers: lowerHeaders, body: raw, dependsOn: deps, group: (atomicityGroup as string | null) ?? undefined, where };
}

const isJsonType = (type: string) => type === 'application/json' || type.endsWith('+json');

/**
 * A JSON batch body as bytes (JSON Format §19.1): any JSON value for JSON media types (and when no Content-Type is
 * given: the request then gets the 415 a direct one would), a string for `text/*` (the import action's text/csv),
 * a base64url (or base64) string for anything else.
 */
function encodeBody(body: unknown, contentType: string | undefined, where: string): Buffer {
  const type = contentType?.split(';')[0].trim().toLowerCase();
  if (type === undefined || isJsonType(type)) return Buffer.from(JSON.stringify(body));
  if (typeof body !== 'string') {
    throw badRequest(`${where}.body must be a string for the media type '${type}' (text as is, other types base64url-encoded).`, `${where}.body`);
  }
  if (type.startsWith('text/')) return Buffer.from(body, 'utf8');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(body)) throw badRequest(`${where}.body is not base64url-encoded.`, `${where}.body`);
  return Buffer.from(body, 'base64');
}

/** A part's reply as JSON Format §19.5 writes it: JSON bodies inline, text as a string, anything else base64url. */
function jsonBatchResponse(units: BatchUnit[]): { responses: Record<string, unknown>[] } {
  const results = units.flatMap((u) => (u.kind === 'request' ? [u.result] : u.results));
  return {
    responses: results.map(({ part, reply }) => {
      const out: Record<string, unknown> = { id: part.id };
      if (part.group !== undefined) out.atomicityGroup = part.group;
      out.status = reply.status;
      out.headers = responseHeaders(reply);
      if (reply.json !== undefined) out.body = reply.json;
      else if (reply.text !== undefined) {
        const type = (reply.contentType ?? 'text/plain').split(';')[0].trim().toLowerCase();
        out.body = isJsonType(type) ? JSON.parse(reply.text) : type.startsWith('text/') ? reply.text : Buffer.from(reply.text).toString('base64url');
      }
      return out;
    }),
  };
}

/** The headers a part's response carries, as a direct response would (less those of the batch's own HTTP response). */
export function responseHeaders(reply: Reply): Record<string, string> {
  const headers: Record<string, string> = { 'OData-Version': '4.0', ...reply.headers };
  if (reply.contentType !== undefined) headers['Content-Type'] = reply.contentType;
  return headers;
}
