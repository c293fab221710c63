import { badRequest } from './errors';

/**
 * Server-driven paging (Part 1 §11.2.6.7). The $skiptoken is opaque to clients: base64url JSON holding either the
 * last key of the page (keyset paging on the default `id` order) or an offset (when $orderby is given), plus how
 * many rows were returned so far (to honour $top across pages).
 */
export interface SkipToken {
  /** Last id returned (keyset on id). */
  k?: string;
  /** Rows to skip (explicit $orderby). */
  o?: number;
  /** Rows returned so far across pages. */
  n: number;
}

export function encodeSkipToken(token: SkipToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

export function decodeSkipToken(text: string): SkipToken {
  try {
    const token = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as SkipToken;
    const valid =
      typeof token === 'object' && token !== null &&
      Number.isSafeInteger(token.n) && token.n >= 0 &&
      (token.k === undefined || typeof token.k === 'string') &&
      (token.o === undefined || (Number.isSafeInteger(token.o) && token.o >= 0)) &&
      (token.k !== undefined) !== (token.o !== undefined);
    if (valid) return token;
  } catch {
    /* fall through */
  }
  throw badRequest('The $skiptoken is not valid; use the @odata.nextLink the service returned.', '$skiptoken');
}

/** The next page's URL: the request's own URL with $skiptoken replaced (and $skip dropped: the token carries it). */
export function nextLink(requestUrl: string, rawQuery: string, token: SkipToken): string {
  const kept = rawQuery
    .split('&')
    .filter((part) => part && !/^\$?(skiptoken|skip)(=|$)/i.test(decodeURIComponent(part.split('=')[0])));
  kept.push(`$skiptoken=${encodeSkipToken(token)}`);
  return `${requestUrl}?${kept.join('&')}`;
}
