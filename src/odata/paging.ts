import { createHash } from 'node:crypto';
import { badRequest } from './errors';

/**
 * Server-driven paging (Part 1 §11.2.6.7). The $skiptoken is opaque to clients: base64url JSON holding either the
 * last key of the page (keyset paging on the default `id` order) or an offset (when $orderby is given), plus how
 * many rows were returned so far (to honour $top across pages), and a fingerprint of the $filter and $orderby it was
 * issued for: a token is only valid with the query it came from.
 */
export interface SkipToken {
  /** Last id returned (keyset on id). */
  k?: string;
  /** Rows to skip (explicit $orderby). */
  o?: number;
  /** Rows returned so far across pages. */
  n: number;
  /** Fingerprint of the query ($filter, $orderby) the token belongs to. */
  q: string;
}

/** A short digest of what decides the rows and their order; `undefined` parts are absent options. */
export function queryFingerprint(filter: string | undefined, orderby: string | undefined): string {
  return createHash('sha256').update(JSON.stringify([filter ?? null, orderby ?? null])).digest('base64url').slice(0, 12);
}

export function encodeSkipToken(token: SkipToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

/** Reads a $skiptoken issued for the query with this fingerprint; anything else is a 400. */
export function decodeSkipToken(text: string, fingerprint: string): SkipToken {
  let token: SkipToken | undefined;
  try {
    token = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as SkipToken;
  } catch {
    token = undefined;
  }
  if (isSkipToken(token)) {
    if (token.q === fingerprint) return token;
    throw badRequest('The $skiptoken belongs to a different $filter or $orderby; follow the @odata.nextLink exactly as returned.', '$skiptoken');
  }
  throw badRequest('The $skiptoken is not valid; use the @odata.nextLink the service returned.', '$skiptoken');
}

function isSkipToken(token: unknown): token is SkipToken {
  const t = token as SkipToken;
  return (
    typeof t === 'object' && t !== null && !Array.isArray(t) &&
    typeof t.q === 'string' &&
    Number.isSafeInteger(t.n) && t.n >= 0 &&
    (t.k === undefined || (typeof t.k === 'string' && !t.k.includes('\u0000'))) &&
    (t.o === undefined || (Number.isSafeInteger(t.o) && t.o >= 0)) &&
    (t.k !== undefined) !== (t.o !== undefined)
  );
}

/** The next page's URL: the request's own URL with $skiptoken replaced (and $skip dropped: the token carries it). */
export function nextLink(requestUrl: string, rawQuery: string, token: SkipToken): string {
  const kept = rawQuery
    .split('&')
    .filter((part) => part && !/^\$?(skiptoken|skip)(=|$)/i.test(decodeURIComponent(part.split('=')[0])));
  kept.push(`$skiptoken=${encodeSkipToken(token)}`);
  return `${requestUrl}?${kept.join('&')}`;
}
