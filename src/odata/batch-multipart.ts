import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import * as Multipasta from 'multipasta';
import * as HeadersParser from 'multipasta/HeadersParser';
import { BATCH_METHODS, BatchPart, BatchUnit, MAX_BATCH_REQUESTS, PartResult, responseHeaders } from './batch';
import { badRequest } from './errors';

/**
 * The multipart batch format (OData 4.01 Part 1 §11.7.7): `multipart/mixed` whose parts are `application/http`
 * requests or change sets (a nested `multipart/mixed` of requests, each with a Content-ID). The MIME structure is
 * split by multipasta (boundaries, part headers, limits); the HTTP message inside a part has its header block read by
 * multipasta's header parser too. Responses mirror the request's structure with boundaries of their own.
 */

interface MimePart {
  headers: Record<string, string>;
  body: Buffer;
}

const CRLF = Buffer.from('\r\n');
const clip = (s: string) => (s.length > 100 ? `${s.slice(0, 100)}…` : s);
const mediaType = (contentType: string | undefined) => contentType?.split(';')[0].trim().toLowerCase();

function flatten(headers: Record<string, string | string[]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

function describe(error: Multipasta.MultipartError): string {
  switch (error._tag) {
    case 'InvalidBoundary':
      return 'its Content-Type needs a boundary parameter (multipart/mixed; boundary=…)';
    case 'BadHeaders':
      return 'a part has malformed headers';
    case 'EndNotReached':
      return 'it ends without its closing delimiter';
    case 'ReachedLimit':
      return error.limit === 'MaxParts' ? `it has more than ${MAX_BATCH_REQUESTS} parts (a batch holds at most ${MAX_BATCH_REQUESTS} requests)` : 'a part is too large';
    default:
      return 'it is not a valid multipart document';
  }
}

/** The body parts of a multipart document; 400 when it is malformed. */
function splitMultipart(contentType: string, body: Buffer, what: string): MimePart[] {
  const parts: MimePart[] = [];
  let failure: string | undefined;
  let finished = false;
  const parser = Multipasta.make({
    headers: { 'content-type': contentType },
    isFile: () => false,
    maxParts: MAX_BATCH_REQUESTS,
    // No part is larger than the document, whose size the body limit bounds.
    maxFieldSize: body.length + 1,
    onField: (info, value) => parts.push({ headers: flatten(info.headers), body: Buffer.from(value) }),
    onFile: () => () => undefined,
    onError: (error) => (failure ??= describe(error)),
    onDone: () => (finished = true),
  });
  parser.write(body);
  parser.end();
  if (failure !== undefined) throw badRequest(`${what} is malformed: ${failure}.`);
  if (!finished) throw badRequest(`${what} is malformed: it ends without its closing delimiter.`);
  return parts;
}

/** The requests of a multipart batch, change-set members carrying their change set (by boundary) as their group. */
export function parseMultipartBatch(contentType: string, raw: Buffer): BatchPart[] {
  const parts: BatchPart[] = [];
  splitMultipart(contentType, raw, 'The multipart batch').forEach((mime, i) => {
    const where = `part ${i + 1}`;
    const type = mediaType(mime.headers['content-type']);
    if (type === 'application/http') {
      parts.push(httpRequest(mime, where));
      return;
    }
    if (type !== 'multipart/mixed') {
      throw badRequest(`${where}: a batch part is application/http (a request) or multipart/mixed (a change set), not '${type ?? 'without Content-Type'}'.`);
    }
    const changeSet = mime.headers['content-type'];
    const members = splitMultipart(changeSet, mime.body, `The change set in ${where}`);
    if (members.length === 0) throw badRequest(`${where}: the change set holds no request.`);
    const group = /boundary="?([^";]+)"?/i.exec(changeSet)![1];
    members.forEach((member, j) => {
      const inner = `${where}, change set part ${j + 1}`;
      if (mediaType(member.headers['content-type']) !== 'application/http') throw badRequest(`${inner}: a change set holds application/http requests only.`);
      const request = httpRequest(member, inner, group);
      if (request.id === undefined) throw badRequest(`${inner}: a request in a change set needs a Content-ID header.`);
      parts.push(request);
    });
  });
  return parts;
}

/** The HTTP request inside an application/http part: request line (the version may be left out), headers, body. */
function httpRequest(mime: MimePart, where: string, group?: string): BatchPart {
  const message = mime.body;
  const lineEnd = message.indexOf(CRLF);
  const requestLine = (lineEnd < 0 ? message : message.subarray(0, lineEnd)).toString('latin1');
  const m = /^([A-Za-z]+) +(\S+)(?: +HTTP\/1\.[01])? *$/.exec(requestLine);
  if (!m) throw badRequest(`${where}: '${clip(requestLine)}' is not a request line (METHOD URL HTTP/1.1).`);
  const method = m[1].toUpperCase();
  if (!BATCH_METHODS.has(method)) throw badRequest(`${where}: the method '${clip(m[1])}' cannot be used in a batch (GET, POST, PATCH, PUT or DELETE).`);

  let headers: Record<string, string> = {};
  let body: Buffer = Buffer.alloc(0);
  if (lineEnd >= 0) {
    const rest = message.subarray(lineEnd + 2);
    if (rest.subarray(0, 2).equals(CRLF)) body = rest.subarray(2);
    else {
      let parsed = HeadersParser.make()(rest, 0);
      // A request without a body whose writer left out the empty line before the boundary.
      if (parsed._tag === 'Continue' && rest.subarray(-2).equals(CRLF)) parsed = HeadersParser.make()(Buffer.concat([rest, CRLF]), 0);
      if (parsed._tag !== 'Headers') throw badRequest(`${where}: the request's headers are malformed or do not end with an empty line.`);
      headers = flatten(parsed.headers);
      body = rest.subarray(parsed.endPosition);
    }
  }
  const length = headers['content-length'];
  if (length !== undefined && /^\d+$/.test(length) && Number(length) <= body.length) body = body.subarray(0, Number(length));
  // The line breaks before the next boundary are framing, not a body.
  if (body.every((byte) => byte === 13 || byte === 10)) body = Buffer.alloc(0);
  delete headers['content-length'];
  const id = mime.headers['content-id'] ?? headers['content-id'];
  delete headers['content-id'];
  return { id, method, url: m[2], headers, body, dependsOn: [], group, where };
}

/** Multipart framing (RFC 2046 §5.1.1): each part after a delimiter line, then the close delimiter. */
function multipart(boundary: string, parts: string[]): string {
  return `${parts.map((part) => `--${boundary}\r\n${part}\r\n`).join('')}--${boundary}--\r\n`;
}

const oneLine = (value: string) => value.replace(/[\r\n]+/g, ' ');

/** One response as an application/http part, with the Content-ID of its request. */
function httpResponse({ part, reply }: PartResult, withContentId = true): string {
  const body = reply.json !== undefined ? JSON.stringify(reply.json) : (reply.text ?? '');
  const headers = responseHeaders(reply);
  if (reply.json !== undefined || reply.text !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
  const head = [`HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ''}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${oneLine(v)}`)].join('\r\n');
  const contentId = withContentId && part.id !== undefined ? `Content-ID: ${oneLine(part.id)}\r\n` : '';
  return `Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n${contentId}\r\n${head}\r\n\r\n${body}`;
}

/**
 * The multipart response: one part per request or change set, in order. A change set that succeeded is a nested
 * multipart/mixed of its responses; one that failed is a single application/http part with the error (Part 1
 * §11.7.7.5).
 */
export function writeMultipartBatch(units: BatchUnit[]): { contentType: string; text: string } {
  const boundary = `batchresponse_${randomUUID()}`;
  const parts = units.map((unit) => {
    if (unit.kind === 'request') return httpResponse(unit.result);
    if (unit.failed) return httpResponse(unit.failed, false);
    const changeSet = `changesetresponse_${randomUUID()}`;
    return `Content-Type: multipart/mixed; boundary=${changeSet}\r\n\r\n${multipart(changeSet, unit.results.map((r) => httpResponse(r)))}`;
  });
  return { contentType: `multipart/mixed; boundary=${boundary}`, text: multipart(boundary, parts) };
}
