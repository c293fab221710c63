import { ODataError, badRequest } from './errors';

/**
 * Content negotiation and protocol headers (OData 4.01 Part 1 §8): Accept / $format, OData-Version and
 * OData-MaxVersion, request Content-Type, Prefer.
 */
export interface JsonFormat {
  /** odata.metadata=none */
  noMetadata: boolean;
  /** IEEE754Compatible=true: Int64 values (here: @odata.count) as strings. */
  ieee754: boolean;
  contentType: string;
}

const JSON_PARAMS = new Set(['odata.metadata', 'metadata', 'odata.streaming', 'streaming', 'ieee754compatible', 'charset', 'q']);

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
  specificity: number;
  index: number;
}

/** Media ranges of an Accept header, most preferred first (RFC 9110 §12.5.1: by q, then by specificity, stable). */
function parseMediaRanges(header: string): MediaRange[] {
  const ranges = header
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part, index) => {
      const [type, ...rest] = part.split(';').map((s) => s.trim());
      const params = new Map<string, string>();
      for (const p of rest) {
        const eq = p.indexOf('=');
        if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim().replace(/^"|"$/g, ''));
      }
      const q = Number(params.get('q') ?? '1');
      const specificity = type === '*/*' ? 0 : type.endsWith('/*') ? 1 : 2;
      return { type: type.toLowerCase(), params, q: Number.isFinite(q) ? q : 0, specificity, index };
    });
  return ranges.sort((a, b) => b.q - a.q || b.specificity - a.specificity || a.index - b.index);
}

function notAcceptable(message: string): ODataError {
  return new ODataError('NotAcceptable', message);
}

/** Picks the JSON format for a data response, or 406. `format` is the $format value, which overrides Accept. */
export function negotiateJson(accept: string | undefined, format: string | undefined): JsonFormat {
  let ranges: MediaRange[];
  if (format !== undefined) {
    if (format.toLowerCase() === 'json') ranges = parseMediaRanges('application/json');
    else {
      ranges = parseMediaRanges(format);
      if (ranges.length !== 1 || ranges[0].type !== 'application/json') {
        throw notAcceptable(`The format '${format}' is not supported; use $format=json.`);
      }
    }
  } else ranges = parseMediaRanges(accept ?? '*/*');
  if (ranges.length === 0) ranges = parseMediaRanges('*/*');

  let unsupportedParam: string | undefined;
  for (const range of ranges) {
    if (!['*/*', 'application/*', 'application/json'].includes(range.type)) continue;
    if (range.q === 0) continue;
    const unknown = [...range.params.keys()].find((k) => !JSON_PARAMS.has(k));
    const metadata = range.params.get('odata.metadata') ?? range.params.get('metadata') ?? 'minimal';
    const ieee = (range.params.get('ieee754compatible') ?? 'false').toLowerCase();
    const charset = range.params.get('charset');
    if (unknown) unsupportedParam = unknown;
    else if (!['minimal', 'none'].includes(metadata)) unsupportedParam = `odata.metadata=${metadata}`;
    else if (!['true', 'false'].includes(ieee)) unsupportedParam = `IEEE754Compatible=${ieee}`;
    else if (charset && charset.toLowerCase() !== 'utf-8') unsupportedParam = `charset=${charset}`;
    else {
      const noMetadata = metadata === 'none';
      let contentType = `application/json;odata.metadata=${metadata}`;
      if (ieee === 'true') contentType += ';IEEE754Compatible=true';
      if (charset) contentType += ';charset=utf-8';
      return { noMetadata, ieee754: ieee === 'true', contentType };
    }
  }
  if (unsupportedParam) throw notAcceptable(`The media type parameter '${unsupportedParam}' is not supported.`);
  throw notAcceptable(`None of the requested media types (${accept ?? format}) can be produced; this resource is available as application/json.`);
}

/**
 * A raw value (`/$count`): text/plain (Part 1 §11.2.10), or 406. `$format` overrides Accept. JSON (`Accept:
 * application/json`, `$format=json`) is tolerated because generic Graph clients send it on every request; the answer is
 * still the plain number.
 */
export function negotiateText(accept: string | undefined, format: string | undefined): string {
  if (format !== undefined) {
    const type = format.split(';')[0].trim().toLowerCase();
    if (['text/plain', 'json', 'application/json'].includes(type)) return 'text/plain';
    throw notAcceptable(`The format '${format}' is not supported for a raw value; it is available as text/plain.`);
  }
  for (const range of parseMediaRanges(accept ?? '*/*')) {
    if (range.q === 0) continue;
    if (['text/plain', 'text/*', '*/*', 'application/json', 'application/*'].includes(range.type)) return 'text/plain';
  }
  throw notAcceptable(`None of the requested media types (${accept}) can be produced; a raw value is available as text/plain.`);
}

/** $metadata: XML by default, JSON CSDL when asked for. */
export function negotiateMetadata(accept: string | undefined, format: string | undefined): 'xml' | 'json' {
  if (format !== undefined) {
    const f = format.toLowerCase();
    if (f === 'xml' || f.startsWith('application/xml')) return 'xml';
    if (f === 'json' || f.startsWith('application/json')) return 'json';
    throw notAcceptable(`The format '${format}' is not supported for $metadata; use xml or json.`);
  }
  for (const range of parseMediaRanges(accept ?? '*/*')) {
    if (range.q === 0) continue;
    if (['application/xml', 'text/xml', '*/*', 'application/*'].includes(range.type)) return 'xml';
    if (range.type === 'application/json') return 'json';
  }
  throw notAcceptable('$metadata is available as application/xml or application/json.');
}

/** OData-Version / OData-MaxVersion: this service speaks 4.0 (and accepts 4.01 requests). */
export function checkVersions(version: string | undefined, maxVersion: string | undefined): void {
  if (version !== undefined && !['4.0', '4.01'].includes(version.trim())) {
    throw badRequest(`OData-Version '${version}' is not supported; this service supports 4.0 and 4.01.`, 'OData-Version');
  }
  if (maxVersion !== undefined) {
    const v = Number(maxVersion.trim());
    if (!/^\d+\.\d+$/.test(maxVersion.trim()) || v < 4) {
      throw badRequest(`OData-MaxVersion '${maxVersion}' is lower than 4.0, the lowest version this service speaks.`, 'OData-MaxVersion');
    }
  }
}

/**
 * The request body's media type: it must be one of `accepted` (application/json unless a route says otherwise), else 415.
 * Returns the bare, lower-cased media type. Only UTF-8 is accepted as a charset.
 */
export function checkContentType(contentType: string | undefined, accepted: readonly string[] = ['application/json']): string {
  const list = accepted.join(' or ');
  if (!contentType) {
    throw new ODataError('UnsupportedMediaType', `A request body needs a Content-Type header; this resource accepts ${list}.`);
  }
  const [type, ...params] = contentType.split(';').map((s) => s.trim().toLowerCase());
  if (!accepted.includes(type)) {
    throw new ODataError('UnsupportedMediaType', `The media type '${type}' is not supported; this resource accepts ${list}.`);
  }
  for (const p of params) {
    const [k, v] = p.split('=').map((s) => s?.trim());
    if (k === 'charset' && v?.replace(/"/g, '') !== 'utf-8') {
      throw new ODataError('UnsupportedMediaType', `The charset '${v}' is not supported; send UTF-8.`);
    }
  }
  return type;
}

export interface Preferences {
  returnPreference?: 'minimal' | 'representation';
  maxPageSize?: number;
  /** `continue-on-error` (a batch): true when given without a value. */
  continueOnError?: boolean;
}

/** Prefer (RFC 7240), prefixed and unprefixed OData preferences alike; unknown preferences are ignored. */
export function parsePrefer(header: string | undefined): Preferences {
  const prefs: Preferences = {};
  if (!header) return prefs;
  for (const item of header.split(',')) {
    const [rawKey, rawValue] = item.split(';')[0].split('=').map((s) => s?.trim());
    const key = rawKey.toLowerCase();
    const value = rawValue?.replace(/^"|"$/g, '');
    if (key === 'return' && (value === 'minimal' || value === 'representation')) prefs.returnPreference = value;
    if ((key === 'odata.maxpagesize' || key === 'maxpagesize') && value && /^\d{1,9}$/.test(value) && Number(value) > 0) {
      prefs.maxPageSize = Number(value);
    }
    if ((key === 'odata.continue-on-error' || key === 'continue-on-error') && (value === undefined || value === 'true' || value === 'false')) {
      prefs.continueOnError = value !== 'false';
    }
  }
  return prefs;
}
