import { ODataError, badRequest } from './errors';
import { ARITHMETIC_OPERATORS, ARITY, BINARY_OPERATORS } from './filter.grammar';
import { stringEnd } from './lexical';

/*
 * Positioned 400 messages for malformed $filter and $orderby expressions. @odata/parser reports only how far its
 * longest valid prefix reached ("Fail at N"), so this is a second, rough grammar written only to say where and why an
 * expression goes wrong: a tokenizer and a recursive-descent shape check.
 */

interface Token {
  kind: 'string' | 'literal' | 'name' | 'punct';
  text: string;
  position: number;
}

export interface Problem {
  position: number;
  problem: string;
}

/** Unwinds the shape check to the first problem it finds. */
class ProblemFound extends Error {
  constructor(readonly found: Problem) {
    super(found.problem);
  }
}

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
      if (err instanceof ProblemFound) return err.found;
      throw err;
    }
  }

  private fail(token: Token | undefined, problem: string): never {
    throw new ProblemFound({ position: token?.position ?? this.end, problem });
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

/** The 400 for `problem` in `source`; `offset` is where `source` starts in the whole query option. */
export function syntaxError(option: string, problem: Problem, source: string, offset = 0): ODataError {
  const position = problem.position + offset;
  const near = source.slice(problem.position, problem.position + 30);
  return badRequest(
    `Syntax error in ${option} at position ${position}${near ? ` ('${near}')` : ' (the end)'}: ${problem.problem}.`,
    option,
  );
}

/** The 400 for an expression @odata/parser rejected: our own shape check's finding, else the parser's position. */
export function rejected(option: string, source: string, err: unknown, operators: Set<string>, map?: number[], trailer?: Set<string>, offset = 0): ODataError {
  const found = locate(source, operators, trailer);
  if (found) return syntaxError(option, found, source, offset);
  const at = /at (\d+)/.exec(err instanceof Error ? err.message : String(err));
  // The parser's position is in the text it parsed (`in` rewritten): map it back to the client's text.
  const parsedAt = at ? Number(at[1]) : 0;
  const position = map ? (map[Math.min(parsedAt, map.length - 1)] ?? 0) : parsedAt;
  const problem = position === 0 ? 'the expression could not be parsed' : `'${source.slice(position, position + 30)}' was not expected`;
  return syntaxError(option, { position, problem }, source, offset);
}
