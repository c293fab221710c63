import { notImplemented } from './errors';
import { AstNode, inner, operands } from './filter.ast';
import { syntaxError } from './filter.diagnostics';
import { MAX_IN_ITEMS, MAX_NOTS, MAX_PARENTHESES } from './filter.grammar';
import { splitTopLevel, stringEnd } from './lexical';

/*
 * Every workaround for a defect of @odata/parser 0.2.14, in one place. Each has direct tests in
 * test/odata-parser.workarounds.test.ts and protocol tests in test/query.test.ts and test/query-injection.test.ts.
 * Two more live where they are used: the parser's errors say only "Fail at N" (filter.diagnostics.ts writes the
 * positioned messages), and it reads an unknown function call `foo(1)` as a key predicate (filter.ast.ts calledName).
 */

// Defect: the parser's time grows with the square of the nesting depth and of `not` chains, and it reads %XX itself.
/** What must hold before @odata/parser sees an expression: parentheses at most MAX_PARENTHESES deep, no '%' outside literals. */
export function precheck(option: string, source: string, offset = 0): void {
  let depth = 0;
  let nots = 0;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (/[A-Za-z_]/.test(ch) && !/[\w.]/.test(source[i - 1] ?? ' ')) {
      const word = /^[\w.]+/.exec(source.slice(i, i + 64))![0];
      if (word === 'not' && ++nots > MAX_NOTS) {
        throw syntaxError(option, { position: i, problem: `more than ${MAX_NOTS} 'not' operators` }, source, offset);
      }
      i += word.length - 1;
    } else if (ch === "'") {
      const end = stringEnd(source, i);
      if (end < 0) return; // the parse reports it, with its position
      i = end - 1;
    } else if (ch === '%') {
      throw syntaxError(option, { position: i, problem: "'%' is not allowed here (percent-encode the query option exactly once)" }, source, offset);
    } else if (ch === '(' && ++depth > MAX_PARENTHESES) {
      throw syntaxError(option, { position: i, problem: `parentheses nest more than ${MAX_PARENTHESES} deep` }, source, offset);
    } else if (ch === ')') depth--;
  }
}

/** Parser input and, for each of its characters (plus one for the end), the position in the client's text it came from. */
export interface Mapped {
  text: string;
  map: number[];
}

// Defect: the parser predates the OData 4.01 `in` operator.
/**
 * Rewrites `path in (a, b)` into `(path eq a or path eq b)`. Also returns, for each character of the result, the
 * position in `source` it came from.
 */
export function rewriteIn(source: string): Mapped {
  let inItems = 0;
  let out = '';
  const map: number[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i];
    if (ch === "'") {
      const end = endOfString(source, i);
      out += source.slice(i, end);
      for (let k = i; k < end; k++) map.push(k);
      i = end;
      continue;
    }
    const m = /^\s+in\s*\(/.exec(source.slice(i));
    if (m && /[\w)]$/.test(out)) {
      const operand = /([A-Za-z_][\w]*(?:\/[A-Za-z_][\w]*)*)$/.exec(out);
      if (!operand || /[)]$/.test(out)) throw notImplemented("The 'in' operator is supported with a property path on its left.", '$filter');
      const listStart = i + m[0].length;
      const { items, end } = inList(source, listStart);
      if (items.length === 0) throw syntaxError('$filter', { position: listStart - 1, problem: "the list of the 'in' operator is empty" }, source);
      inItems += items.length;
      if (inItems > MAX_IN_ITEMS) {
        throw syntaxError('$filter', { position: listStart - 1, problem: `the lists of the 'in' operator have more than ${MAX_IN_ITEMS} items together; split the request` }, source);
      }
      const path = operand[1];
      const from = map[out.length - path.length];
      const replacement = `(${items.map((item) => `${path} eq ${item}`).join(' or ')})`;
      out = out.slice(0, out.length - path.length) + replacement;
      map.length -= path.length;
      for (let k = 0; k < replacement.length; k++) map.push(from);
      i = end;
      continue;
    }
    out += ch;
    map.push(i);
    i++;
  }
  map.push(source.length);
  return { text: out, map };
}

function endOfString(source: string, start: number): number {
  const end = stringEnd(source, start);
  if (end < 0) throw syntaxError('$filter', { position: start, problem: 'the string literal that starts here is not closed' }, source);
  return end;
}

/** The items of the `in` list that starts at `start` (just after its '('), and the position after its ')'. */
function inList(source: string, start: number): { items: string[]; end: number } {
  const { parts, end, stoppedAt } = splitTopLevel(source, ',', { start, stopAtClose: true });
  const missing = (position: number) => syntaxError('$filter', { position, problem: "an item of the 'in' list is missing" }, source);
  // Every part but the last ended at a comma, just before the next part.
  for (let k = 0; k < parts.length - 1; k++) if (!parts[k].text.trim()) throw missing(parts[k + 1].offset - 1);
  if (stoppedAt === 'openString') throw syntaxError('$filter', { position: end, problem: 'the string literal that starts here is not closed' }, source);
  if (stoppedAt !== 'close') throw syntaxError('$filter', { position: start - 1, problem: "the list of the 'in' operator is not closed" }, source);
  const last = parts[parts.length - 1].text.trim();
  if (!last && parts.length > 1) throw missing(end);
  return { items: (last ? parts : parts.slice(0, -1)).map((part) => part.text.trim()), end: end + 1 };
}

// Defect: the parser decodes %XX escapes itself (its grammar is written over URL-encoded text).
/**
 * The text here is already decoded: a decoded `%27` would close a string literal, letting data become syntax. Every
 * '%' (only literals have any, after precheck) goes to the parser as `%25`, which {@link unescapePercent} turns back.
 */
export function escapePercent({ text, map }: Mapped): Mapped {
  if (!text.includes('%')) return { text, map };
  let out = '';
  const outMap: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const piece = text[i] === '%' ? '%25' : text[i];
    out += piece;
    for (let k = 0; k < piece.length; k++) outMap.push(map[i]);
  }
  outMap.push(map[text.length]);
  return { text: out, map: outMap };
}

/** The value of a string literal that went through {@link escapePercent}. */
export function unescapePercent(value: string): string {
  return value.replace(/%25/g, '%');
}

// Defect: the parser loops forever on a JSON string left open in an array or object literal (`["a`, `{"a":"`).
/**
 * Where a JSON string (a '"' outside string literals; `\` escapes the next character) opens and is not closed, if
 * one is. Closed JSON literals still go to the parser (and answer 501, as before).
 */
export function unclosedJsonString(text: string): number | undefined {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "'") {
      const end = stringEnd(text, i);
      if (end < 0) return undefined; // the rest is inside a string literal
      i = end - 1;
    } else if (text[i] === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (i >= text.length) return start;
    }
  }
  return undefined;
}

/** Fails, as the parser would, on text that would make it loop forever; the caller turns that into the usual 400. */
export function refuseUnclosedJsonString(text: string): void {
  const at = unclosedJsonString(text);
  if (at !== undefined) throw new Error(`A JSON string is not closed: fail at ${at}`);
}

/** An and/or/not expression with OData's precedence; its leaves are the parser's other nodes. */
export type BoolTree = { op: 'and' | 'or'; operands: BoolTree[] } | { op: 'not'; operand: BoolTree } | { op: 'leaf'; node: AstNode };

// Defect: the parser reads `not A and B` as `not (A and B)` (its notExpr takes a whole boolCommonExpr).
/** Rebuilds the and/or/not structure from the operands in text order with OData's precedence: not, then and, then or (URL §5.1.1). */
export function reassociate(node: AstNode): BoolTree {
  type Item = AstNode | 'and' | 'or' | 'not';
  const sequence: Item[] = [];
  const pending: Item[] = [node];
  while (pending.length) {
    const item = pending.pop()!;
    if (typeof item === 'string') sequence.push(item);
    else if (item.type === 'AndExpression' || item.type === 'OrExpression') {
      const { left, right } = operands(item);
      pending.push(right, item.type === 'AndExpression' ? 'and' : 'or', left);
    } else if (item.type === 'NotExpression') pending.push(inner(item), 'not');
    else sequence.push(item);
  }
  let i = 0;
  const unary = (): BoolTree => {
    let nots = 0;
    while (sequence[i] === 'not') {
      nots++;
      i++;
    }
    let tree: BoolTree = { op: 'leaf', node: sequence[i++] as AstNode };
    for (; nots > 0; nots--) tree = { op: 'not', operand: tree };
    return tree;
  };
  const chain = (op: 'and' | 'or', next: () => BoolTree): BoolTree => {
    const items = [next()];
    while (sequence[i] === op) {
      i++;
      items.push(next());
    }
    return items.length === 1 ? items[0] : { op, operands: items };
  };
  return chain('or', () => chain('and', unary));
}
