import { Dialect, quote as q } from '../db/dialect';
import { Binding } from './binding';
import { badRequest, notImplemented } from './errors';
import { AstNode, calledName, enumLiteral, functionName, inner, literalType, memberPath, methodCall, operands } from './filter.ast';
import {
  COMPARISONS, DATE_PARTS, GROUPING, IMPLEMENTED, IMPLEMENTED_FUNCTIONS, LEAVES, MAX_EXPRESSION_DEPTH, MAX_LITERALS,
  UNSUPPORTED, UNSUPPORTED_FUNCTIONS,
} from './filter.grammar';
import { stringLiteralValue } from './lexical';
import { EnumType, StructuralProperty } from './model';
import { BoolTree, reassociate, unescapePercent } from './odata-parser.workarounds';
import { decodeBinary, parseDateTimeOffset } from './payload';

/*
 * Parsed $filter and $orderby expressions → parameterised SQL against one entity type's binding: every literal becomes
 * a bound parameter, every property path a quoted column from the binding, and anything not understood is a 400 or a 501.
 */

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
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
/** substring() arguments above this are clamped to it: no string is that long, and start + 1 still fits an int4. */
const MAX_SUBSTRING_ARGUMENT = INT32_MAX - 1;

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


/** `(a OP b OP …)` in groups of at most 32, so neither SQL nesting nor SQLite's expression depth grows with the count. */
function joinBalanced(parts: string[], op: 'AND' | 'OR'): string {
  if (parts.length <= 32) return `(${parts.join(` ${op} `)})`;
  const groups: string[] = [];
  for (let i = 0; i < parts.length; i += 32) groups.push(joinBalanced(parts.slice(i, i + 32), op));
  return joinBalanced(groups, op);
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
  condition(node: AstNode): string {
    this.option = this.params.option = '$filter';
    const expr = this.expr(node);
    if (expr.type.kind !== 'bool') throw badRequest(`The $filter expression '${node.raw}' is not a boolean expression.`, '$filter');
    return expr.sql;
  }

  /** A value SQL expression for $orderby. */
  value(node: AstNode): string {
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

  private expr(node: AstNode): Expr {
    // Every compound SQL expression written here is parenthesised already, so grouping adds no SQL nesting.
    if (GROUPING.has(node.type)) return this.expr(inner(node));
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

  private compound(node: AstNode): Expr {
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
        throw badRequest(`Could not find a function named '${functionName(node)}' (in ${this.option}).`, this.option);
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

  private bool(node: AstNode): string {
    const expr = this.expr(node);
    if (expr.type.kind !== 'bool') throw badRequest(`'${node.raw}' is not a boolean expression.`, this.option);
    return expr.sql;
  }

  private member(node: AstNode): Expr {
    const name = calledName(node);
    if (name) {
      if (this.binding.type.navigations.has(name)) {
        throw notImplemented(`Navigation property '${name}' cannot be used in an expression.`, this.option);
      }
      if (UNSUPPORTED_FUNCTIONS.has(name)) throw notImplemented(`The function '${name}' is not supported; supported are ${IMPLEMENTED_FUNCTIONS}.`, this.option);
      throw badRequest(`Could not find a function named '${name}' (in ${this.option}); the supported functions are ${IMPLEMENTED_FUNCTIONS}.`, this.option);
    }
    const path = memberPath(node);
    if (!path) throw notImplemented(`The path '${node.raw}' is not supported.`, this.option);
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

  private literal(node: AstNode): Expr {
    const raw = node.raw;
    const bind = (value: unknown, type: ExprType): Expr => ({ sql: this.params.add(value), type, literal: { value } });
    const type = literalType(node);
    switch (type) {
      case 'null':
        return { sql: 'NULL', type: { kind: 'null' }, literal: { value: null } };
      case 'Edm.String': {
        const value = stringLiteralValue(raw);
        if (value === undefined) throw new Error(`@odata/parser accepted the string literal ${raw}`);
        const text = unescapePercent(value);
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
        throw badRequest(`Literals of type ${type} ('${raw}') cannot be compared with any property of this type.`, this.option);
    }
  }

  private enumLiteral(node: AstNode): Expr {
    const { typeName, members } = enumLiteral(node);
    const enumType = this.findEnum(typeName);
    if (members.length !== 1) throw notImplemented(`Flag combinations are not supported ('${node.raw}').`, this.option);
    const [member] = members;
    // A numeric member (`ns.Type'1'`) has no name in the parser's tree: it is refused as 'undefined' (see enumLiteral).
    const value = member === undefined ? undefined : (enumType.members.get(member) ?? (/^\d+$/.test(member) && enumType.names.has(Number(member)) ? Number(member) : undefined));
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

  private comparison(node: AstNode): Expr {
    const op = COMPARISONS[node.type];
    const sides = operands(node);
    let left = this.expr(sides.left);
    let right = this.expr(sides.right);
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
  private coerce(expr: Expr, other: Expr, node: AstNode): Expr {
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

  private method(node: AstNode): Expr {
    const { method: name, parameters } = methodCall(node);
    if (!IMPLEMENTED.has(name)) {
      if (UNSUPPORTED_FUNCTIONS.has(name)) throw notImplemented(`The function '${name}' is not supported; supported are ${IMPLEMENTED_FUNCTIONS}.`, this.option);
      throw badRequest(`Could not find a function named '${name}' (in ${this.option}); the supported functions are ${IMPLEMENTED_FUNCTIONS}.`, this.option);
    }
    const args: Expr[] = parameters.map((p) => this.expr(p));
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
