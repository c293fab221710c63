import { defaultParser } from '@odata/parser';
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
  constructor(private readonly prefix = 'f') {}
  add(value: unknown): string {
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

const DATE_PARTS = new Set(['year', 'month', 'day', 'hour', 'minute', 'second']);
const IMPLEMENTED_FUNCTIONS =
  'contains, startswith, endswith, tolower, toupper, trim, length, indexof, substring, concat, year, month, day, hour, minute, second';

function syntaxError(option: string, source: string, err: unknown): ODataError {
  const message = err instanceof Error ? err.message : String(err);
  const at = /at (\d+)/.exec(message);
  const position = at ? Number(at[1]) : 0;
  return badRequest(
    `Syntax error in ${option} at position ${position}: '${source.slice(position, position + 30) || '(end of expression)'}' was not expected.`,
    option,
  );
}

/** Rewrites `path in (a, b)` into `(path eq a or path eq b)`: @odata/parser predates the 4.01 `in` operator. */
export function rewriteIn(source: string): string {
  let out = '';
  let i = 0;
  while (i < source.length) {
    const ch = source[i];
    if (ch === "'") {
      const end = endOfString(source, i);
      out += source.slice(i, end);
      i = end;
      continue;
    }
    const m = /^\s+in\s*\(/.exec(source.slice(i));
    if (m && /[\w)]$/.test(out)) {
      const operand = /([A-Za-z_][\w]*(?:\/[A-Za-z_][\w]*)*)$/.exec(out);
      if (!operand || /[)]$/.test(out)) throw notImplemented("The 'in' operator is supported with a property path on its left.", '$filter');
      const listStart = i + m[0].length;
      const { items, end } = splitList(source, listStart);
      if (items.length === 0) throw badRequest("The list of the 'in' operator is empty.", '$filter');
      const path = operand[1];
      out = out.slice(0, out.length - path.length) + `(${items.map((item) => `${path} eq ${item}`).join(' or ')})`;
      i = end;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}

function endOfString(source: string, start: number): number {
  let i = start + 1;
  while (i < source.length) {
    if (source[i] === "'") {
      if (source[i + 1] === "'") i += 2;
      else return i + 1;
    } else i++;
  }
  throw badRequest(`Unterminated string literal in $filter at position ${start}.`, '$filter');
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
      else if (items.length) throw badRequest(`Empty item in the list of the 'in' operator at position ${i}.`, '$filter');
      return { items, end: i + 1 };
    }
    if (ch === ',' && depth === 0) {
      if (!current.trim()) throw badRequest(`Empty item in the list of the 'in' operator at position ${i}.`, '$filter');
      items.push(current.trim());
      current = '';
    } else current += ch;
    i++;
  }
  throw badRequest(`The list of the 'in' operator at position ${start - 1} is not closed.`, '$filter');
}

export function parseFilter(source: string): Node {
  const rewritten = rewriteIn(source);
  try {
    return defaultParser.filter(rewritten) as unknown as Node;
  } catch (err) {
    throw syntaxError('$filter', rewritten, err);
  }
}

export function parseOrderBy(source: string): { expr: Node; descending: boolean }[] {
  let parsed: any;
  try {
    parsed = defaultParser.query(`$orderby=${source}`);
  } catch (err) {
    throw syntaxError('$orderby', `$orderby=${source}`, err);
  }
  const option = parsed?.value?.options?.[0];
  if (!option || option.type !== 'OrderBy' || option.raw !== `$orderby=${source}`) {
    throw badRequest(`Syntax error in $orderby: '${source}'.`, '$orderby');
  }
  return option.value.items.map((item: any) => ({ expr: item.value.expr as Node, descending: item.value.direction === -1 }));
}

/** Translates parsed expressions against one entity type's binding. */
export class ExpressionTranslator {
  constructor(
    private readonly binding: Binding,
    private readonly dialect: Dialect,
    private readonly params: Parameters,
    private readonly alias = 't',
  ) {}

  /** A boolean SQL condition for $filter. */
  condition(node: Node): string {
    const expr = this.expr(node);
    if (expr.type.kind !== 'bool') throw badRequest(`The $filter expression '${node.raw}' is not a boolean expression.`, '$filter');
    return expr.sql;
  }

  /** A value SQL expression for $orderby. */
  value(node: Node): string {
    const expr = this.expr(node);
    if (expr.type.kind === 'complex' || expr.type.kind === 'null') {
      throw badRequest(`Cannot order by '${node.raw}'.`, '$orderby');
    }
    return expr.sql;
  }

  private expr(node: Node): Expr {
    switch (node.type) {
      case 'CommonExpression':
      case 'ParenExpression':
      case 'BoolParenExpression': {
        const inner = this.expr(node.value);
        return { ...inner, sql: `(${inner.sql})`, column: false };
      }
      case 'AndExpression':
      case 'OrExpression': {
        const left = this.bool(node.value.left);
        const right = this.bool(node.value.right);
        return { sql: `(${left} ${node.type === 'AndExpression' ? 'AND' : 'OR'} ${right})`, type: { kind: 'bool' } };
      }
      case 'NotExpression':
        return { sql: `(NOT ${this.bool(node.value)})`, type: { kind: 'bool' } };
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
      default:
        if (COMPARISONS[node.type]) return this.comparison(node);
        if (UNSUPPORTED[node.type]) throw notImplemented(`${UNSUPPORTED[node.type]} is not supported in $filter ('${node.raw}').`, '$filter');
        throw notImplemented(`The expression '${node.raw}' is not supported.`, '$filter');
    }
  }

  private bool(node: Node): string {
    const expr = this.expr(node);
    if (expr.type.kind !== 'bool') throw badRequest(`'${node.raw}' is not a boolean expression.`, '$filter');
    return expr.sql;
  }

  private member(node: Node): Expr {
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
          throw notImplemented(`The path '${node.raw}' is not supported.`, '$filter');
        }
      } else {
        throw notImplemented(`The path '${node.raw}' is not supported.`, '$filter');
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
      throw notImplemented(`Navigation property '${path[0]}' cannot be used in an expression.`, '$filter');
    }
    throw badRequest(`Could not find a property named '${joined}' on type '${this.binding.type.qualifiedName}'.`, joined);
  }

  private literal(node: Node): Expr {
    const raw = node.raw;
    const bind = (value: unknown, type: ExprType): Expr => ({ sql: this.params.add(value), type, literal: { value } });
    switch (node.value) {
      case 'null':
        return { sql: 'NULL', type: { kind: 'null' }, literal: { value: null } };
      case 'Edm.String':
        return bind(raw.slice(1, -1).replace(/''/g, "'"), { kind: 'string' });
      case 'Edm.Guid':
        return bind(raw, { kind: 'string' });
      case 'Edm.Boolean':
        return { sql: raw === 'true' ? '(1=1)' : '(1=0)', type: { kind: 'bool' } };
      case 'Edm.SByte':
      case 'Edm.Byte':
      case 'Edm.Int16':
      case 'Edm.Int32':
      case 'Edm.Int64': {
        const value = Number(raw);
        if (!Number.isSafeInteger(value)) throw badRequest(`The number ${raw} is out of range.`, '$filter');
        return bind(value, { kind: 'int' });
      }
      case 'Edm.Decimal':
      case 'Edm.Double':
      case 'Edm.Single': {
        const value = Number(raw);
        if (!Number.isFinite(value)) throw badRequest(`The number ${raw} is not supported.`, '$filter');
        return bind(value, { kind: 'number' });
      }
      case 'Edm.DateTimeOffset': {
        const ms = parseDateTimeOffset(raw);
        if (ms === undefined) throw badRequest(`'${raw}' is not a valid Edm.DateTimeOffset.`, '$filter');
        return bind(ms, { kind: 'datetime' });
      }
      case 'Edm.Binary': {
        const bytes = decodeBinary(raw.replace(/^(binary|X)'/i, '').replace(/'$/, ''));
        if (!bytes) throw badRequest(`'${raw}' is not a valid Edm.Binary literal.`, '$filter');
        return bind(bytes, { kind: 'binary' });
      }
      default:
        throw badRequest(`Literals of type ${node.value} ('${raw}') cannot be compared with any property of this type.`, '$filter');
    }
  }

  private enumLiteral(node: Node): Expr {
    const typeName = node.value.name.raw as string;
    const members = node.value.value.value.values as Node[];
    const enumType = this.findEnum(typeName);
    if (members.length !== 1) throw notImplemented(`Flag combinations are not supported ('${node.raw}').`, '$filter');
    const member = (members[0].value as { name: string }).name;
    const value = enumType.members.get(member) ?? (/^\d+$/.test(member) && enumType.names.has(Number(member)) ? Number(member) : undefined);
    if (value === undefined) throw badRequest(`'${member}' is not a member of '${enumType.qualifiedName}'.`, '$filter');
    return { sql: this.params.add(value), type: { kind: 'enum', enum: enumType }, literal: { value } };
  }

  private findEnum(typeName: string): EnumType {
    for (const column of this.binding.columns.values()) {
      const type = column.property.type;
      if (type.kind === 'enum' && (type.qualifiedName === typeName || type.qualifiedName === typeName.replace(/^graph\./, 'microsoft.graph.'))) return type;
    }
    throw badRequest(`'${typeName}' is not an enumeration type used by '${this.binding.type.qualifiedName}'.`, '$filter');
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
      throw badRequest(`A complex property can only be compared with null ('${node.raw}').`, '$filter');
    }
    if (left.type.kind === 'bool' || right.type.kind === 'bool') {
      throw notImplemented(`Comparing boolean expressions is not supported ('${node.raw}').`, '$filter');
    }
    if (!compatible(left.type, right.type)) {
      throw badRequest(`Cannot compare ${describe(left.type)} with ${describe(right.type)} in '${node.raw}'.`, '$filter');
    }
    if ((left.type.kind === 'binary' || right.type.kind === 'binary') && op !== '=' && op !== '<>') {
      throw badRequest(`Binary values can only be compared with eq or ne ('${node.raw}').`, '$filter');
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
    return this.dialect.name === 'sqlite' ? `(${a} IS ${b})` : `(${a} IS NOT DISTINCT FROM ${b})`;
  }

  /** A string literal compared with an enum property names a member: bind the member's value instead. */
  private coerce(expr: Expr, other: Expr, node: Node): Expr {
    if (other.type.kind === 'enum' && expr.type.kind === 'string' && expr.literal) {
      const name = expr.literal.value as string;
      const value = other.type.enum.members.get(name);
      if (value === undefined) {
        throw badRequest(`'${name}' is not a member of '${other.type.enum.qualifiedName}' (in '${node.raw}').`, '$filter');
      }
      return { sql: this.params.add(value), type: other.type, literal: { value } };
    }
    return expr;
  }

  private method(node: Node): Expr {
    const name: string = node.value.method;
    const args: Expr[] = (node.value.parameters as Node[]).map((p) => this.expr(p));
    const expect = (count: number[], ...kinds: string[]) => {
      if (!count.includes(args.length)) throw badRequest(`${name}() takes ${count.join(' or ')} arguments ('${node.raw}').`, '$filter');
      args.forEach((a, i) => {
        const want = kinds[Math.min(i, kinds.length - 1)];
        const ok = want === 'int' ? a.type.kind === 'int' : a.type.kind === want || a.type.kind === 'null';
        if (!ok) throw badRequest(`Argument ${i + 1} of ${name}() must be ${want === 'int' ? 'an integer' : `a ${want}`} ('${node.raw}').`, '$filter');
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
      case 'substring':
        expect([2, 3], 'string', 'int');
        return {
          sql: args.length === 2 ? `substr(${s[0]}, ${s[1]} + 1)` : `substr(${s[0]}, ${s[1]} + 1, ${s[2]})`,
          type: { kind: 'string' },
        };
      default:
        if (DATE_PARTS.has(name)) {
          expect([1], 'datetime');
          return { sql: this.dialect.datePart(name as 'year', s[0]), type: { kind: 'int' } };
        }
        throw notImplemented(`The function '${name}' is not supported; supported are ${IMPLEMENTED_FUNCTIONS}.`, '$filter');
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
