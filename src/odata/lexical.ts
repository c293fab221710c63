/*
 * Lexical primitives of OData URL text, shared by the query options, $filter/$orderby and the resource path:
 * single-quoted string literals (a quote inside one is doubled) and splitting at separators that stand outside
 * string literals and parentheses.
 */

/** The index just past the string literal whose opening `'` is at `start`, or -1 when the literal is not closed. */
export function stringEnd(source: string, start: number): number {
  let i = start + 1;
  while (i < source.length) {
    if (source[i] === "'") {
      if (source[i + 1] === "'") i += 2;
      else return i + 1;
    } else i++;
  }
  return -1;
}

/** The value of `text` when it is exactly one string literal (`'it''s'` → `it's`), else undefined. */
export function stringLiteralValue(text: string): string | undefined {
  if (!text.startsWith("'") || stringEnd(text, 0) !== text.length) return undefined;
  return text.slice(1, -1).replace(/''/g, "'");
}

/** One part of a split text and where it starts in that text. */
export interface Part {
  text: string;
  offset: number;
}

/** The result of {@link splitTopLevel}. */
export interface TopLevelSplit {
  /** The parts in order; the last one runs up to `end`. */
  parts: Part[];
  /** Where the scan stopped: the end of the text, a `)` that closes nothing (`stopAtClose`), or an unclosed `'`. */
  end: number;
  /** Why the scan stopped before the end of the text, if it did. */
  stoppedAt?: 'close' | 'openString';
  /** Parentheses still open at `end` (negative when more were closed than opened). */
  depth: number;
}

/**
 * Splits `source` from `start` at each `separator` that stands outside string literals and parentheses. The scan stops
 * at a string literal that is not closed and, with `stopAtClose`, at a `)` that closes no parenthesis opened after
 * `start` (the end of a parenthesised list); otherwise such a `)` only makes the depth negative.
 */
export function splitTopLevel(
  source: string,
  separator: string,
  { start = 0, stopAtClose = false }: { start?: number; stopAtClose?: boolean } = {},
): TopLevelSplit {
  const parts: Part[] = [];
  let depth = 0;
  let from = start;
  const finish = (end: number, stoppedAt?: TopLevelSplit['stoppedAt']): TopLevelSplit => {
    parts.push({ text: source.slice(from, end), offset: from });
    return { parts, end, stoppedAt, depth };
  };
  for (let i = start; i < source.length; i++) {
    const ch = source[i];
    if (ch === "'") {
      const end = stringEnd(source, i);
      if (end < 0) return finish(i, 'openString');
      i = end - 1;
    } else if (ch === '(') depth++;
    else if (ch === ')') {
      if (depth === 0 && stopAtClose) return finish(i, 'close');
      depth--;
    } else if (ch === separator && depth === 0) {
      parts.push({ text: source.slice(from, i), offset: from });
      from = i + 1;
    }
  }
  return finish(source.length);
}
