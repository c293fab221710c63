import { badRequest } from './errors';
import { stringLiteralValue } from './lexical';

/** One URL path segment: `name`, `name('key')`, `name(key)`, `name(id='key')` or a call `name()`. */
export interface Segment {
  name: string;
  key?: string;
  call?: boolean;
}

const SEGMENT = /^([^()]+)(?:\((.*)\))?$/;

function unquote(text: string): string {
  if (text.length >= 2 && text.startsWith("'") && text.endsWith("'")) {
    const value = stringLiteralValue(text);
    if (value === undefined) throw badRequest(`The key literal ${text} is not a valid string literal.`);
    return value;
  }
  // Unquoted keys are accepted when they are GUIDs, as Graph accepts them.
  if (/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text)) return text;
  throw badRequest(`The key ${text} must be a quoted string literal, e.g. ('${text}').`);
}

export function parseSegment(raw: string): Segment {
  const m = SEGMENT.exec(raw);
  if (!m) throw badRequest(`The path segment '${raw}' is not valid.`);
  const [, name, inside] = m;
  if (inside === undefined) return { name };
  if (inside.trim() === '') return { name, call: true };
  const named = /^\s*id\s*=\s*(.+)$/.exec(inside);
  return { name, key: unquote((named ? named[1] : inside).trim()) };
}

/** Splits a request path below the service root into decoded segments. */
export function splitPath(path: string): string[] {
  if (path === '' || path === '/') return [];
  return path
    .replace(/^\//, '')
    .replace(/\/$/, '')
    .split('/')
    .map((s) => {
      let segment: string;
      try {
        segment = decodeURIComponent(s);
      } catch {
        throw badRequest(`The path segment '${s}' is not correctly percent-encoded.`);
      }
      // No name or key holds U+0000, and PostgreSQL text cannot: a key with it would fail in the database (a 500).
      if (segment.includes('\u0000')) throw badRequest(`The path segment '${s}' contains the NUL character (%00).`);
      return segment;
    });
}
