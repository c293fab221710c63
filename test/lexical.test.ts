import { splitTopLevel, stringEnd, stringLiteralValue } from '../src/odata/lexical';

/** The lexical primitives every query option and the resource path share (src/odata/lexical.ts). */
describe('stringEnd', () => {
  it.each([
    ["'abc' eq x", 0, 5],
    ["x eq 'abc'", 5, 10],
    ["'it''s'", 0, 7],
    ["''", 0, 2],
    ["''''", 0, 4],
    ["'a'''", 0, 5],
    ["'abc", 0, -1],
    ["'it''", 0, -1],
    ["'", 0, -1],
  ])('%j from %d ends at %d', (source, start, end) => {
    expect(stringEnd(source, start)).toBe(end);
  });
});

describe('stringLiteralValue', () => {
  it.each([
    ["'abc'", 'abc'],
    ["'it''s'", "it's"],
    ["''", ''],
    ["''''", "'"],
    ["'a,b;(c)'", 'a,b;(c)'],
    ["'a'b'", undefined],
    ["'a'''", "a'"],
    ["'a''", undefined],
    ["'abc", undefined],
    ["abc'", undefined],
    ['abc', undefined],
    ["'a' ", undefined],
  ])('%j → %j', (text, value) => {
    expect(stringLiteralValue(text)).toBe(value);
  });
});

describe('splitTopLevel', () => {
  it.each([
    ['a,b,c', ',', ['a', 'b', 'c']],
    ['a, b ,c', ',', ['a', ' b ', 'c']],
    ['', ',', ['']],
    ['a,', ',', ['a', '']],
    ["a eq 'x,y',b", ',', ["a eq 'x,y'", 'b']],
    ["a eq 'it''s,',b", ',', ["a eq 'it''s,'", 'b']],
    ['f(a,b),c', ',', ['f(a,b)', 'c']],
    ["d($filter=x eq 'a;b';$top=1),u", ',', ["d($filter=x eq 'a;b';$top=1)", 'u']],
    ["$filter=x eq 'a;b';$top=1", ';', ["$filter=x eq 'a;b'", '$top=1']],
    ['a;(b;c);d', ';', ['a', '(b;c)', 'd']],
  ])('%j at %j → %j', (source, separator, parts) => {
    const split = splitTopLevel(source, separator);

    expect(split.parts.map((p) => p.text)).toEqual(parts);
    expect(split.stoppedAt).toBeUndefined();
    expect(split.end).toBe(source.length);
  });

  it('gives each part its offset in the source', () => {
    expect(splitTopLevel("a, 'x,y' ,(b,c)", ',').parts).toEqual([
      { text: 'a', offset: 0 },
      { text: " 'x,y' ", offset: 2 },
      { text: '(b,c)', offset: 10 },
    ]);
  });

  it.each([
    // source, options, parts, end, stoppedAt, depth
    ["x in ('a','b') and y", { start: 6, stopAtClose: true }, ["'a'", "'b'"], 13, 'close', 0],
    ['(a,(b,c)),d', { start: 1, stopAtClose: true }, ['a', '(b,c)'], 8, 'close', 0],
    ['a),b', { stopAtClose: true }, ['a'], 1, 'close', 0],
    ["a,'b,c", {}, ['a', ''], 2, 'openString', 0],
    ["a,(b,'c", {}, ['a', '(b,'], 5, 'openString', 1],
    ['a),b', {}, ['a),b'], 4, undefined, -1],
    ['a),(b,c', {}, ['a),(b', 'c'], 7, undefined, 0],
    ['(a,b', {}, ['(a,b'], 4, undefined, 1],
  ] as const)('%j with %j stops with %j', (source, options, parts, end, stoppedAt, depth) => {
    const split = splitTopLevel(source, ',', options);

    expect({ parts: split.parts.map((p) => p.text), end: split.end, stoppedAt: split.stoppedAt, depth: split.depth }).toEqual({
      parts,
      end,
      stoppedAt,
      depth,
    });
  });
});
