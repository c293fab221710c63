import { defaultParser } from '@odata/parser';
import { parserFactory } from '@odata/parser/lib/parser';
import { orderbyItem } from '@odata/parser/lib/query';
import { Binding } from './binding';
import { Dialect } from '../db/dialect';
import { badRequest, notImplemented, ODataError } from './errors';
import { EnumType, StructuralProperty } from './model';
import { decodeBinary, parseDateTimeOffset } from './payload';

/**
 * $filter and $orderby expressions → parameterised SQL. The expression is parsed with @odata/parser (from the raw
 * query text, never the framework's pre-parsed query: odata-server-notes defect 5); every literal becomes a bound
 * parameter, every property path a quoted column from the binding, and anything not understood is a 400 or a 501.
 */

type Node = { type: string; value: any; raw: string; position: number };

type ExprType =
  | { kind: 'string' | 'int' | 'number' | 'bool' | 'datetime' | 'binary' | 'null' }
  | { kind: 'enum'; enum: EnumType }
  | { kind: 'complex'; path: string };

interface Expr {
  sql: string;
  type: ExprType;
  /** A bound literal (its SQL is a placeholder), so null checks on it can be decided now. */
  literal?: { value: unknown };
  /** A bare column (index-friendly comparisons). */
  column?: boolean;
}

/** Collects bound parameters as TypeORM named parameters (:f0, :f1, …). */
export class Parameters {
  readonly values: Record<string, unknown> = {};
  private next = 0;
  /** The query option whose literals are being bound, for the error past MAX_LITERALS. */
  option?: string;
  constructor(private readonly prefix = 'f') {}
  add(value: unknown): string {
    if (this.next >= MAX_LITERALS) {
      throw badRequest(`The query has more than ${MAX_LITERALS} literal values; split it into several requests.`, this.option);
    }
    const name = `${this.prefix}${this.next++}`;
    this.values[name] = value;
    return `:${name}`;
  }
}

const q = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

const COMPARISONS: Record<string, string> = {
  EqualsExpression: '=',
  NotEqualsExpression: '<>',
  LesserThanExpression: '<',
  LesserOrEqualsExpression: '<=',
  GreaterThanExpression: '>',
  GreaterOrEqualsExpression: '>=',
};

const UNSUPPORTED: Record<string, string> = {
  AddExpression: 'the add operator',
  SubExpression: 'the sub operator',
  MulExpression: 'the mul operator',
  DivExpression: 'the div operator',
  ModExpression: 'the mod operator',
  NegateExpression: 'negation',
  HasExpression: 'the has operator',
  AnyExpression: 'the any lambda operator',
  AllExpression: 'the all lambda operator',
  ImplicitVariableExpression: '$it',
  IsOfExpression: 'isof',
  CastExpression: 'cast',
};

type BoolTree = { op: 'and' | 'or'; operands: BoolTree[] } | { op: 'not'; operand: BoolTree } | { op: 'leaf'; node: Node };

/**
 * @odata/parser reads `not A and B` as `not (A and B)` (its notExpr takes a whole boolCommonExpr). Rebuild the
 * and/or/not structure from the operands in text order with OData's precedence: not, then and, then or (URL §5.1.1).
 */
function reassociate(node: Node): BoolTree {
  type Item = Node | 'and' | 'or' | 'not';
  const sequence: Item[] = [];
  const pending: Item[] = [node];
  while (pending.length) {
    const item = pending.pop()!;
    if (typeof item === 'string') sequence.push(item);
    else if (item.type === 'AndExpression' || item.type === 'OrExpression') {
      pending.push(item.value.right, item.type === 'AndExpression' ? 'and' : 'or', item.value.left);
    } else if (item.type === 'NotExpression') pending.push(item.value, 'not');
    else sequence.push(item);
  }
  let i = 0;
  const unary = (): BoolTree => {
    let nots = 0;
    while (sequence[i] === 'not') {
      nots++;
      i++;
    }
    let tree: BoolTree = { op: 'leaf', node: sequence[i++] as Node };
    for (; nots > 0; nots--) tree = { op: 'not', operand: tree };
    return tree;
  };
  const chain = (op: 'and' | 'or', next: () => BoolTree): BoolTree => {
    const operands = [next()];
    while (sequence[i] === op) {
      i++;
      operands.push(next());
    }
    return operands.length === 1 ? operands[0] : { op, operands };
  };
  return chain('or', () => chain('and', unary));
}

const GROUPING = new Set(['CommonExpression', 'ParenExpression', 'BoolParenExpression']);
const LEAVES = new Set(['Literal', 'Enum', 'FirstMemberExpression', 'MemberExpression', 'PropertyPathExpression']);

/** `(a OP b OP …)` in groups of at most 32, so neither SQL nesting nor SQLite's expression depth grows with the count. */
function joinBalanced(parts: string[], op: 'AND' | 'OR'): string {
  if (parts.length <= 32) return `(${parts.join(` ${op} `)})`;
  const groups: string[] = [];
  for (let i = 0; i < parts.length; i += 32) groups.push(joinBalanced(parts.slice(i, i + 32), op));
  return joinBalanced(groups, op);
}

const DATE_PARTS = new Set(['year', 'month', 'day', 'hour', 'minute', 'second']);
const IMPLEMENTED_FUNCTIONS =
  'contains, startswith, endswith, tolower, toupper, trim, length, indexof, substring, concat, year, month, day, hour, minute, second';
const IMPLEMENTED = new Set(IMPLEMENTED_FUNCTIONS.split(', '));

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
/** substring() arguments above this are clamped to it: no string is that long, and start + 1 still fits an int4. */
const MAX_SUBSTRING_ARGUMENT = INT32_MAX - 1;

/** Limits that keep every accepted expression within what both engines run: SQLite's SQL parser stack is ~100 deep. */
export const MAX_EXPRESSION_DEPTH = 12;
export const MAX_LITERALS = 1000;
/**
 * The parser's time grows with the square of a chain's length: `in` lists (rewritten into `or` chains) have at most
 * this many items together, and a $filter at most MAX_NOTS `not`s.
 */
export const MAX_IN_ITEMS = 250;
export const MAX_NOTS = 100;
/** Parentheses deeper than this are refused before parsing, for the same reason. */
export const MAX_PARENTHESES = 50;

/** Canonical OData functions this service does not implement (501); any other unknown function name is a 400. */
const UNSUPPORTED_FUNCTIONS = new Set([
  'fractionalseconds', 'totalseconds', 'totaloffsetminutes', 'date', 'time', 'now', 'mindatetime', 'maxdatetime',
  'round', 'floor', 'ceiling', 'isof', 'cast', 'matchesPattern', 'hassubset', 'hassubsequence', 'case',
  'geo.distance', 'geo.length', 'geo.intersects',
]);

const BINARY_OPERATORS = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le', 'and', 'or', 'add', 'sub', 'mul', 'div', 'divby', 'mod', 'has', 'in']);
const ARITHMETIC_OPERATORS = new Set(['add', 'sub', 'mul', 'div', 'divby', 'mod']);
/** Argument counts of the canonical functions the shape check knows. */
const ARITY = new Map<string, number[]>([
  ['contains', [2]], ['startswith', [2]], ['endswith', [2]], ['indexof', [2]], ['concat', [2]], ['substring', [2, 3]],
  ['length', [1]], ['tolower', [1]], ['toupper', [1]], ['trim', [1]],
  ['year', [1]], ['month', [1]], ['day', [1]], ['hour', [1]], ['minute', [1]], ['second', [1]],
]);

interface Token {
  kind: 'string' | 'literal' | 'name' | 'punct';
  text: string;
  position: number;
}

interface Problem {
  position: number;
  problem: string;
}

const isProblem = (x: unknown): x is Problem => typeof x === 'object' && x !== null && 'problem' in x;

/** What a character outside a string literal that no expression may contain is most likely meant to be. */
function illegalCharacter(source: string, i: number): Problem {
  const ch = source[i];
  const two = source.slice(i, i + 2);
  if (ch === '"') return { position: i, problem: `'"' is not allowed: string literals are written in single quotes` };
  if (['==', '!=', '<=', '>=', '<>'].includes(two) || '=<>'.includes(ch)) {
    const op = ['==', '!=', '<=', '>=', '<>'].includes(two) ? two : ch;
    return { position: i, problem: `'${op}' is not an operator: use eq, ne, gt, ge, lt or le` };
  }
  if (two === '&&' || two === '||') return { position: i, problem: `'${two}' is not an operator: use and, or` };
  if (two === '--' || two === '/*') return { position: i, problem: `'${two}' is not allowed: expressions have no comments` };
  return { position: i, problem: `the character '${ch}' is not allowed here` };
}

/** The tokens up to the first character no expression may contain, and that character's problem. */
function tokenize(source: string): { tokens: Token[]; stop?: Problem } {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i];
    const rest = source.slice(i);
    if (ch === ' ' || ch === '\t') {
      i++;
      continue;
    }
    if (ch === "'") {
      const end = stringEnd(source, i);
      if (end < 0) return { tokens, stop: { position: i, problem: 'the string literal that starts here is not closed' } };
      tokens.push({ kind: 'string', text: source.slice(i, end), position: i });
      i = end;
      continue;
    }
    if (rest.startsWith('--') || rest.startsWith('/*')) return { tokens, stop: illegalCharacter(source, i) };
    // Numbers, dates, times and GUIDs: a digit (or a minus and a digit) and what may follow in those literals.
    const number = /^-?\d[\w.:+-]*/.exec(rest);
    if (number) {
      tokens.push({ kind: 'literal', text: number[0], position: i });
      i += number[0].length;
      continue;
    }
    const name = /^[A-Za-z_$@][\w.$@]*/.exec(rest);
    if (name) {
      let text = name[0];
      // A typed literal: enum members, binary'…', duration'…' are a qualified name directly followed by a string.
      if (source[i + text.length] === "'") {
        const end = stringEnd(source, i + text.length);
        if (end < 0) return { tokens, stop: { position: i + text.length, problem: 'the string literal that starts here is not closed' } };
        text = source.slice(i, end);
        tokens.push({ kind: 'literal', text, position: i });
      } else tokens.push({ kind: 'name', text, position: i });
      i += text.length;
      continue;
    }
    if ('(),/:-'.includes(ch)) {
      tokens.push({ kind: 'punct', text: ch, position: i });
      i++;
      continue;
    }
    return { tokens, stop: illegalCharacter(source, i) };
  }
  return { tokens };
}

function stringEnd(source: string, start: number): number {
  let i = start + 1;
  while (i < source.length) {
    if (source[i] === "'") {
      if (source[i + 1] === "'") i += 2;
      else return i + 1;
    } else i++;
  }
  return -1;
}

/**
 * A rough recursive-descent check of an expression's shape, used only to say where a rejected expression goes wrong:
 * @odata/parser reports just how far its longest valid prefix reached. `trailer` lists words allowed after the
 * expression ($orderby's asc/desc); `operators` the binary operators allowed.
 */
class ShapeCheck {
  private i = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly end: number,
    private operators: Set<string>,
    private readonly trailer: Set<string> = new Set(),
  ) {}

  run(): Problem | undefined {
    try {
      this.expr(0);
      const next = this.tokens[this.i];
      if (next && next.kind === 'name' && this.trailer.has(next.text)) this.i++;
      const extra = this.tokens[this.i];
      if (extra) {
        if (extra.text === ')') return { position: extra.position, problem: "')' has no matching '('" };
        const expected = this.trailer.size ? `${[...this.trailer].join(', ')}, ',' or the end of the expression` : 'an operator (eq, ne, gt, ge, lt, le, and, or, in) or the end of the expression';
        return { position: extra.position, problem: `'${extra.text}' was not expected; expected ${expected}` };
      }
      return undefined;
    } catch (err) {
      if (isProblem(err)) return err;
      throw err;
    }
  }

  private fail(token: Token | undefined, problem: string): never {
    throw { position: token?.position ?? this.end, problem } satisfies Problem;
  }

  private expr(depth: number): void {
    this.unary(depth);
    for (let next = this.tokens[this.i]; next?.kind === 'name' && this.operators.has(next.text); next = this.tokens[this.i]) {
      this.i++;
      this.unary(depth);
    }
  }

  private unary(depth: number): void {
    const token = this.tokens[this.i];
    if (depth > 200) this.fail(token, 'the expression is nested too deeply');
    if (!token) this.fail(undefined, 'the expression ends where an operand was expected');
    this.i++;
    if ((token.kind === 'name' && token.text === 'not') || token.text === '-') return this.unary(depth + 1);
    if (token.kind === 'string' || token.kind === 'literal') return;
    if (token.text === '(') {
      this.expr(depth + 1);
      while (this.tokens[this.i]?.text === ',') {
        this.i++;
        this.expr(depth + 1);
      }
      return this.close(token);
    }
    if (token.kind === 'name' && !BINARY_OPERATORS.has(token.text)) return this.pathTail(token, depth);
    this.fail(token, `an operand was expected, found '${token.text}'`);
  }

  private pathTail(previous: Token, depth: number): void {
    let last = previous;
    for (;;) {
      const next = this.tokens[this.i];
      if (next?.text === '(' && next.position === last.position + last.text.length) {
        this.i++;
        this.arguments(last, next, depth + 1);
        last = this.tokens[this.i - 1];
      } else if (next?.text === '/') {
        this.i++;
        const segment = this.tokens[this.i];
        if (!segment || segment.kind !== 'name') this.fail(segment, `a property name was expected after '/'`);
        this.i++;
        last = segment;
      } else return;
    }
  }

  private arguments(name: Token, open: Token, depth: number): void {
    let count = 0;
    if (this.tokens[this.i]?.text === ')') this.i++;
    else {
      const lambda = this.tokens[this.i]?.kind === 'name' && this.tokens[this.i + 1]?.text === ':';
      if (lambda) this.i += 2;
      // Arguments of the canonical functions are values, not conditions; only a lambda body is a condition.
      const operators = this.operators;
      if (!lambda && ARITY.has(name.text)) this.operators = ARITHMETIC_OPERATORS;
      try {
        for (;;) {
          this.expr(depth);
          count++;
          if (this.tokens[this.i]?.text !== ',') break;
          this.i++;
        }
      } finally {
        this.operators = operators;
      }
      this.close(open);
    }
    const arity = ARITY.get(name.text);
    if (arity && !arity.includes(count)) {
      this.fail(name, `${name.text}() takes ${arity.join(' or ')} argument${arity[arity.length - 1] === 1 ? '' : 's'}, not ${count}`);
    }
  }

  private close(open: Token): void {
    const token = this.tokens[this.i];
    if (token?.text === ')') {
      this.i++;
      return;
    }
    if (!token) this.fail(open, "this '(' is not closed");
    this.fail(token, `')' or ',' was expected, found '${token.text}'`);
  }
}

/** Where and why an expression is malformed, or undefined when its shape looks fine (the parser's own limits). */
function locate(source: string, operators: Set<string>, trailer?: Set<string>): Problem | undefined {
  const { tokens, stop } = tokenize(source);
  const shape = new ShapeCheck(tokens, stop?.position ?? source.length, operators, trailer).run();
  // Whichever comes first: a misplaced token before the bad character, or the bad character itself.
  return shape && (!stop || shape.position < stop.position) ? shape : stop;
}

function syntaxError(option: string, problem: Problem, source: string, offset = 0): ODataError {
  const position = problem.position + offset;
  const near = source.slice(problem.position, problem.position + 30);
  return badRequest(
    `Syntax error in ${option} at position ${position}${near ? ` ('${near}')` : ' (the end)'}: ${problem.problem}.`,
    option,
  );
}

/** The 400 for an expression @odata/parser rejected: our own shape check's finding, else the parser's position. */
function rejected(option: string, source: string, err: unknown, operators: Set<string>, map?: number[], trailer?: Set<string>, offset = 0): ODataError {
  const found = locate(source, operators, trailer);
  if (found) return syntaxError(option, found, source, offset);
  const at = /at (\d+)/.exec(err instanceof Error ? err.message : String(err));
  // The parser's position is in the text it parsed (`in` rewritten): map it back to the client's text.
  const parsedAt = at ? Number(at[1]) : 0;
  const position = map ? (map[Math.min(parsedAt, map.length - 1)] ?? 0) : parsedAt;
  const problem = position === 0 ? 'the expression could not be parsed' : `'${source.slice(position, position + 30)}' was not expected`;
  return syntaxError(option, { position, problem }, source, offset);
}

/**
 * Rewrites `path in (a, b)` into `(path eq a or path eq b)`: @odata/parser predates the 4.01 `in` operator. Also
 * returns, for each character of the result, the position in `source` it came from.
 */
function rewriteInMapped(source: string): { text: string; map: number[] } {
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
      const { items, end } = splitList(source, listStart);
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

function splitList(source: string, start: number): { items: string[]; end: number } {
  const items: string[] = [];
  let depth = 0;
  let current = '';
  let i = start;
  while (i < source.length) {
    const ch = source[i];
    if (ch === "'") {
      const end = endOfString(source, i);
      current += source.slice(i, end);
      i = end;
      continue;
    }
    if (ch === '(') depth++;
    if (ch === ')' && depth-- === 0) {
      if (current.trim()) items.push(current.trim());
      else if (items.length) throw syntaxError('$filter', { position: i, problem: "an item of the 'in' list is missing" }, source);
      return { items, end: i + 1 };
    }
    if (ch === ',' && depth === 0) {
      if (!current.trim()) throw syntaxError('$filter', { position: i, problem: "an item of the 'in' list is missing" }, source);
      items.push(current.trim());
      current = '';
    } else current += ch;
    i++;
  }
  throw syntaxError('$filter', { position: start - 1, problem: "the list of the 'in' operator is not closed" }, source);
}

/** What must hold before @odata/parser sees an expression: parentheses at most MAX_PARENTHESES deep, no '%' outside literals. */
function precheck(option: string, source: string, offset = 0): void {
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

/**
 * The parser reads %XX escapes itself (its grammar is written over the URL-encoded text), but the text here is already
 * decoded: a decoded `%27` would close a string literal, letting data become syntax. Every '%' (only literals have
 * any, after precheck) goes to the parser as `%25`, which the literal translation turns back.
 */
function escapePercent(text: string, map: number[]): { text: string; map: number[] } {
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

/** Parses a $filter expression; a malformed one is a 400 that names the problem and its position. */
export function parseFilter(source: string): Node {
  if (!source.trim()) throw badRequest('The $filter expression is empty.', '$filter');
  precheck('$filter', source);
  const rewritten = rewriteInMapped(source);
  const parsed = escapePercent(rewritten.text, rewritten.map);
  try {
    return defaultParser.filter(parsed.text) as unknown as Node;
  } catch (err) {
    throw rejected('$filter', source, err, BINARY_OPERATORS, parsed.map);
  }
}

const parseOrderByItem = parserFactory(orderbyItem);
const DIRECTIONS = new Set(['asc', 'desc']);

/** Parses $orderby item by item, so an error's position is in the client's text. */
export function parseOrderBy(source: string): { expr: Node; descending: boolean }[] {
  return splitTopLevelCommas(source).map(({ text, offset }) => {
    const lead = text.length - text.trimStart().length;
    const item = text.trim();
    if (!item) throw syntaxError('$orderby', { position: offset, problem: 'an expression to order by was expected' }, source, 0);
    precheck('$orderby', item, offset + lead);
    const escaped = escapePercent(item, [...item].map((_, i) => i).concat(item.length));
    let parsed: any;
    try {
      parsed = parseOrderByItem(escaped.text, {});
    } catch (err) {
      throw rejected('$orderby', item, err, ARITHMETIC_OPERATORS, escaped.map, DIRECTIONS, offset + lead);
    }
    return { expr: parsed.value.expr as Node, descending: parsed.value.direction === -1 };
  });
}

/** Splits at commas outside string literals and parentheses, keeping each part's offset. */
function splitTopLevelCommas(source: string): { text: string; offset: number }[] {
  const parts: { text: string; offset: number }[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === "'") {
      const end = stringEnd(source, i);
      if (end < 0) throw syntaxError('$orderby', { position: i, problem: 'the string literal that starts here is not closed' }, source);
      i = end - 1;
    } else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push({ text: source.slice(start, i), offset: start });
      start = i + 1;
    }
  }
  parts.push({ text: source.slice(start), offset: start });
  return parts;
}

/** Translates parsed expressions against one entity type's binding. */
export class ExpressionTranslator {
  /** The query option being translated, for error messages and targets. */
  private option = '$filter';
  private depth = 0;

  constructor(
    private readonly binding: Binding,
    private readonly dialect: Dialect,
    private readonly params: Parameters,
    private readonly alias = 't',
  ) {}

  /** A boolean SQL condition for $filter. */
  condition(node: Node): string {
    this.option = this.params.option = '$filter';
    const expr = this.expr(node);
    if (expr.type.kind !== 'bool') throw badRequest(`The $filter expression '${node.raw}' is not a boolean expression.`, '$filter');
    return expr.sql;
  }

  /** A value SQL expression for $orderby. */
  value(node: Node): string {
    this.option = this.params.option = '$orderby';
    const expr = this.expr(node);
    if (expr.type.kind === 'complex' || expr.type.kind === 'null') {
      throw badRequest(`Cannot order by '${node.raw}'.`, '$orderby');
    }
    // A constant orders nothing, and SQL reads a bare integer in ORDER BY as a column number.
    if (expr.literal) throw badRequest(`Cannot order by the constant '${node.raw}'; order by a property.`, '$orderby');
    if (expr.type.kind === 'bool') throw badRequest(`Cannot order by the boolean expression '${node.raw}'.`, '$orderby');
    return expr.sql;
  }

  private expr(node: Node): Expr {
    // Every compound SQL expression written here is parenthesised already, so grouping adds no SQL nesting.
    if (GROUPING.has(node.type)) return this.expr(node.value);
    if (LEAVES.has(node.type)) return this.compound(node);
    return this.nested(() => this.compound(node));
  }

  /** Runs `fn` one level deeper; past MAX_EXPRESSION_DEPTH levels the expression is refused. */
  private nested<T>(fn: () => T): T {
    if (++this.depth > MAX_EXPRESSION_DEPTH) {
      this.depth--;
      throw badRequest(`The ${this.option} expression is nested more than ${MAX_EXPRESSION_DEPTH} levels deep; simplify it.`, this.option);
    }
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  private compound(node: Node): Expr {
    switch (node.type) {
      case 'AndExpression':
      case 'OrExpression':
      case 'NotExpression':
        return { sql: this.logical(reassociate(node)), type: { kind: 'bool' } };
      case 'FirstMemberExpression':
      case 'MemberExpression':
      case 'PropertyPathExpression':
        return this.member(node);
      case 'Literal':
        return this.literal(node);
      case 'Enum':
        return this.enumLiteral(node);
      case 'MethodCallExpression':
        return this.method(node);
      case 'FunctionExpression':
        throw badRequest(`Could not find a function named '${node.value.fn?.raw ?? node.raw}' (in ${this.option}).`, this.option);
      default:
        if (COMPARISONS[node.type]) return this.comparison(node);
        if (UNSUPPORTED[node.type]) throw notImplemented(`${UNSUPPORTED[node.type]} is not supported in ${this.option} ('${node.raw}').`, this.option);
        throw notImplemented(`The expression '${node.raw}' is not supported.`, this.option);
    }
  }

  /**
   * SQL of an and/or/not tree. A chain `a or b or c …` is one level, written flat in balanced groups (SQLite's parser
   * stack is shallow); the top level was counted by the caller.
   */
  private logical(tree: BoolTree, top = true): string {
    if (tree.op === 'leaf') return this.bool(tree.node);
    const sql = () =>
      tree.op === 'not'
        ? `(NOT ${this.logical(tree.operand, false)})`
        : joinBalanced(tree.operands.map((operand) => this.logical(operand, false)), tree.op === 'and' ? 'AND' : 'OR');
    return top ? sql() : this.nested(sql);
  }

  private bool(node: Node): string {
    const expr = this.expr(node);
    if (expr.type.kind !== 'bool') throw badRequest(`'${node.raw}' is not a boolean expression.`, this.option);
    return expr.sql;
  }

  private member(node: Node): Expr {
    const call = /^([A-Za-z_][\w.]*)\s*\(/.exec(node.raw) ?? /\/([A-Za-z_][\w.]*)\s*\(/.exec(node.raw);
    if (call) {
      const name = call[1];
      if (this.binding.type.navigations.has(name)) {
        throw notImplemented(`Navigation property '${name}' cannot be used in an expression.`, this.option);
      }
      if (UNSUPPORTED_FUNCTIONS.has(name)) throw notImplemented(`The function '${name}' is not supported; supported are ${IMPLEMENTED_FUNCTIONS}.`, this.option);
      throw badRequest(`Could not find a function named '${name}' (in ${this.option}); the supported functions are ${IMPLEMENTED_FUNCTIONS}.`, this.option);
    }
    const path: string[] = [];
    let current: any = node;
    while (current) {
      if (current.type === 'FirstMemberExpression' || current.type === 'MemberExpression' || current.type === 'SingleNavigationExpression') {
        current = current.value;
      } else if (current.type === 'PropertyPathExpression') {
        if (current.value.type === 'ODataIdentifier') {
          path.push(current.value.value.name);
          current = undefined;
        } else if (current.value.current) {
          path.push(current.value.current.value.name);
          current = current.value.next;
        } else {
          throw notImplemented(`The path '${node.raw}' is not supported.`, this.option);
        }
      } else {
        throw notImplemented(`The path '${node.raw}' is not supported.`, this.option);
      }
    }
    const joined = path.join('/');
    const column = this.binding.columns.get(joined);
    if (column) return { sql: `${this.alias}.${q(column.column)}`, type: typeOf(column.property), column: true };
    const property = this.binding.type.properties.get(joined);
    if (property?.type.kind === 'complex') {
      return { sql: `${this.alias}.${q(this.binding.complexNullColumn.get(joined)!)}`, type: { kind: 'complex', path: joined } };
    }
    if (this.binding.type.navigations.has(path[0])) {
      throw notImplemented(`Navigation property '${path[0]}' cannot be used in an expression.`, this.option);
    }
    throw badRequest(`Could not find a property named '${joined}' on type '${this.binding.type.qualifiedName}' (in ${this.option}).`, this.option);
  }

  private literal(node: Node): Expr {
    const raw = node.raw;
    const bind = (value: unknown, type: ExprType): Expr => ({ sql: this.params.add(value), type, literal: { value } });
    switch (node.value) {
      case 'null':
        return { sql: 'NULL', type: { kind: 'null' }, literal: { value: null } };
      case 'Edm.String': {
        // '%' reached the parser escaped as %25 (see escapePercent).
        const text = raw.slice(1, -1).replace(/''/g, "'").replace(/%25/g, '%');
        if (text.includes('\u0000')) throw badRequest(`String literals cannot contain the NUL character (in ${this.option}).`, this.option);
        return bind(text, { kind: 'string' });
      }
      case 'Edm.Guid':
        // Keys are server GUIDs in lower case; a GUID literal matches them in either case.
        return bind(raw.toLowerCase(), { kind: 'string' });
      case 'Edm.Boolean':
        return { sql: raw === 'true' ? '(1=1)' : '(1=0)', type: { kind: 'bool' } };
      case 'Edm.SByte':
      case 'Edm.Byte':
      case 'Edm.Int16':
      case 'Edm.Int32':
      case 'Edm.Int64': {
        const value = Number(raw);
        if (!Number.isSafeInteger(value)) throw badRequest(`The number ${raw} is out of range.`, this.option);
        // Typed, so PostgreSQL does not read it as the Int32 it is compared with (integer out of range: a 500).
        if (value < INT32_MIN || value > INT32_MAX) return { sql: `CAST(${this.params.add(value)} AS BIGINT)`, type: { kind: 'int' }, literal: { value } };
        return bind(value, { kind: 'int' });
      }
      case 'Edm.Decimal':
      case 'Edm.Double':
      case 'Edm.Single': {
        const value = Number(raw);
        if (!Number.isFinite(value)) throw badRequest(`The number ${raw} is not supported.`, this.option);
        // Typed, for the same reason: PostgreSQL would read 1.5 compared with an Int32 as an invalid integer.
        return { sql: `CAST(${this.params.add(value)} AS DOUBLE PRECISION)`, type: { kind: 'number' }, literal: { value } };
      }
      case 'Edm.DateTimeOffset': {
        const ms = parseDateTimeOffset(raw);
        if (ms === undefined) throw badRequest(`'${raw}' is not a valid Edm.DateTimeOffset.`, this.option);
        return bind(ms, { kind: 'datetime' });
      }
      case 'Edm.Binary': {
        const bytes = decodeBinary(raw.replace(/^(binary|X)'/i, '').replace(/'$/, ''));
        if (!bytes) throw badRequest(`'${raw}' is not a valid Edm.Binary literal.`, this.option);
        return bind(bytes, { kind: 'binary' });
      }
      default:
        throw badRequest(`Literals of type ${node.value} ('${raw}') cannot be compared with any property of this type.`, this.option);
    }
  }

  private enumLiteral(node: Node): Expr {
    const typeName = node.value.name.raw as string;
    const members = node.value.value.value.values as Node[];
    const enumType = this.findEnum(typeName);
    if (members.length !== 1) throw notImplemented(`Flag combinations are not supported ('${node.raw}').`, this.option);
    const member = (members[0].value as { name: string }).name;
    const value = enumType.members.get(member) ?? (/^\d+$/.test(member) && enumType.names.has(Number(member)) ? Number(member) : undefined);
    if (value === undefined) throw badRequest(`'${member}' is not a member of '${enumType.qualifiedName}'.`, this.option);
    return { sql: this.params.add(value), type: { kind: 'enum', enum: enumType }, literal: { value } };
  }

  private findEnum(typeName: string): EnumType {
    for (const column of this.binding.columns.values()) {
      const type = column.property.type;
      if (type.kind === 'enum' && (type.qualifiedName === typeName || type.qualifiedName === typeName.replace(/^graph\./, 'microsoft.graph.'))) return type;
    }
    throw badRequest(`'${typeName}' is not an enumeration type used by '${this.binding.type.qualifiedName}'.`, this.option);
  }

  private comparison(node: Node): Expr {
    const op = COMPARISONS[node.type];
    let left = this.expr(node.value.left);
    let right = this.expr(node.value.right);
    [left, right] = [this.coerce(left, right, node), this.coerce(right, left, node)];
    const nullLeft = left.type.kind === 'null';
    const nullRight = right.type.kind === 'null';
    if (nullLeft || nullRight) {
      const other = nullLeft ? right : left;
      if (op === '=') return { sql: nullLeft && nullRight ? '(1=1)' : `(${other.sql} IS NULL)`, type: { kind: 'bool' } };
      if (op === '<>') return { sql: nullLeft && nullRight ? '(1=0)' : `(${other.sql} IS NOT NULL)`, type: { kind: 'bool' } };
      return { sql: '(1=0)', type: { kind: 'bool' } };
    }
    if (left.type.kind === 'complex' || right.type.kind === 'complex') {
      throw badRequest(`A complex property can only be compared with null ('${node.raw}').`, this.option);
    }
    if (left.type.kind === 'bool' || right.type.kind === 'bool') {
      throw notImplemented(`Comparing boolean expressions is not supported ('${node.raw}').`, this.option);
    }
    if (!compatible(left.type, right.type)) {
      throw badRequest(`Cannot compare ${describe(left.type)} with ${describe(right.type)} in '${node.raw}'.`, this.option);
    }
    if ((left.type.kind === 'binary' || right.type.kind === 'binary') && op !== '=' && op !== '<>') {
      throw badRequest(`Binary values can only be compared with eq or ne ('${node.raw}').`, this.option);
    }
    // OData comparisons are two-valued: a null operand makes eq/gt/… false and ne true (URL §5.1.1.1).
    const notNull = [left, right].filter((e) => !e.literal).map((e) => `${e.sql} IS NOT NULL`);
    const bothValues = left.literal || right.literal;
    if (op === '<>') {
      const nullable = [left, right].filter((e) => !e.literal).map((e) => `${e.sql} IS NULL`);
      if (bothValues) return { sql: `(${left.sql} <> ${right.sql} OR ${nullable.join(' OR ') || '1=0'})`, type: { kind: 'bool' } };
      return { sql: `(NOT ${this.nullSafeEquals(left.sql, right.sql)})`, type: { kind: 'bool' } };
    }
    if (op === '=' && !bothValues) return { sql: this.nullSafeEquals(left.sql, right.sql), type: { kind: 'bool' } };
    return { sql: `(${left.sql} ${op} ${right.sql}${notNull.map((c) => ` AND ${c}`).join('')})`, type: { kind: 'bool' } };
  }

  private nullSafeEquals(a: string, b: string): string {
    return this.dialect.same(a, b);
  }

  /** A string literal compared with an enum property names a member: bind the member's value instead. */
  private coerce(expr: Expr, other: Expr, node: Node): Expr {
    if (other.type.kind === 'enum' && expr.type.kind === 'string' && expr.literal) {
      const name = expr.literal.value as string;
      const value = other.type.enum.members.get(name);
      if (value === undefined) {
        throw badRequest(`'${name}' is not a member of '${other.type.enum.qualifiedName}' (in '${node.raw}').`, this.option);
      }
      return { sql: this.params.add(value), type: other.type, literal: { value } };
    }
    return expr;
  }

  private method(node: Node): Expr {
    const name: string = node.value.method;
    if (!IMPLEMENTED.has(name)) {
      if (UNSUPPORTED_FUNCTIONS.has(name)) throw notImplemented(`The function '${name}' is not supported; supported are ${IMPLEMENTED_FUNCTIONS}.`, this.option);
      throw badRequest(`Could not find a function named '${name}' (in ${this.option}); the supported functions are ${IMPLEMENTED_FUNCTIONS}.`, this.option);
    }
    const args: Expr[] = ((node.value.parameters ?? []) as Node[]).map((p) => this.expr(p));
    const expect = (count: number[], ...kinds: string[]) => {
      if (!count.includes(args.length)) throw badRequest(`${name}() takes ${count.join(' or ')} arguments ('${node.raw}').`, this.option);
      args.forEach((a, i) => {
        const want = kinds[Math.min(i, kinds.length - 1)];
        const ok = want === 'int' ? a.type.kind === 'int' : a.type.kind === want || a.type.kind === 'null';
        if (!ok) throw badRequest(`Argument ${i + 1} of ${name}() must be ${want === 'int' ? 'an integer' : `a ${want}`} ('${node.raw}').`, this.option);
      });
    };
    const s = args.map((a) => a.sql);
    switch (name) {
      case 'contains':
        expect([2], 'string');
        return { sql: `(${this.dialect.indexOf(s[0], s[1])} >= 0)`, type: { kind: 'bool' } };
      case 'startswith':
        expect([2], 'string');
        return { sql: `(substr(${s[0]}, 1, length(${s[1]})) = ${s[1]})`, type: { kind: 'bool' } };
      case 'endswith':
        expect([2], 'string');
        return { sql: this.dialect.endsWith(s[0], s[1]), type: { kind: 'bool' } };
      case 'tolower':
      case 'toupper':
      case 'trim':
        expect([1], 'string');
        return { sql: `${name === 'tolower' ? 'lower' : name === 'toupper' ? 'upper' : 'trim'}(${s[0]})`, type: { kind: 'string' } };
      case 'length':
        expect([1], 'string');
        return { sql: `length(${s[0]})`, type: { kind: 'int' } };
      case 'indexof':
        expect([2], 'string');
        return { sql: this.dialect.indexOf(s[0], s[1]), type: { kind: 'int' } };
      case 'concat':
        expect([2], 'string');
        return { sql: `(${s[0]} || ${s[1]})`, type: { kind: 'string' } };
      case 'substring': {
        expect([2, 3], 'string', 'int');
        // A negative start or length counts as 0 (SQL's substr would count from the end, or fail on PostgreSQL); a literal
        // beyond any string's length counts as MAX_SUBSTRING_ARGUMENT (PostgreSQL's substr takes an int4, and start + 1 must fit).
        for (const i of [1, 2]) {
          const value = args[i]?.literal?.value;
          if (typeof value === 'number' && value > MAX_SUBSTRING_ARGUMENT) s[i] = this.params.add(MAX_SUBSTRING_ARGUMENT);
        }
        const atLeastZero = (x: string) => this.dialect.atLeastZero(x);
        return {
          sql: args.length === 2 ? `substr(${s[0]}, ${atLeastZero(s[1])} + 1)` : `substr(${s[0]}, ${atLeastZero(s[1])} + 1, ${atLeastZero(s[2])})`,
          type: { kind: 'string' },
        };
      }
      default:
        if (DATE_PARTS.has(name)) {
          expect([1], 'datetime');
          return { sql: this.dialect.datePart(name as 'year', s[0]), type: { kind: 'int' } };
        }
        throw new Error(`unreachable: ${name}`);
    }
  }
}

function typeOf(property: StructuralProperty): ExprType {
  const type = property.type;
  if (type.kind === 'enum') return { kind: 'enum', enum: type };
  if (type.kind === 'complex') return { kind: 'complex', path: property.name };
  switch (type.name) {
    case 'Edm.Int32':
      return { kind: 'int' };
    case 'Edm.Binary':
      return { kind: 'binary' };
    case 'Edm.DateTimeOffset':
      return { kind: 'datetime' };
    default:
      return { kind: 'string' };
  }
}

function compatible(a: ExprType, b: ExprType): boolean {
  const numeric = (t: ExprType) => t.kind === 'int' || t.kind === 'number';
  if (numeric(a) && numeric(b)) return true;
  if (a.kind === 'enum' && b.kind === 'enum') return a.enum === b.enum;
  return a.kind === b.kind;
}

function describe(t: ExprType): string {
  return t.kind === 'enum' ? `'${t.enum.qualifiedName}'` : `a ${t.kind} value`;
}
