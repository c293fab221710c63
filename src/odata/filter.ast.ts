/*
 * A typed view of @odata/parser's expression tree. The parser's nodes carry an untyped `value` whose shape depends on
 * the node type; everything that reads one goes through the accessors here, which check the shape they rely on, so a
 * parser upgrade that changes it fails loudly here instead of silently in the SQL translation.
 */

/** A node of @odata/parser's expression tree; read its `value` only through the accessors of this module. */
export interface AstNode {
  type: string;
  value: unknown;
  raw: string;
  position: number;
}

/** One parsed $orderby item. */
export interface OrderByItem {
  expr: AstNode;
  descending: boolean;
}

export function isAstNode(x: unknown): x is AstNode {
  return typeof x === 'object' && x !== null && typeof (x as AstNode).type === 'string' && typeof (x as AstNode).raw === 'string';
}

function unexpected(node: AstNode, expected: string): Error {
  return new Error(`@odata/parser built an unexpected ${node.type} node for '${node.raw}': expected ${expected}`);
}

function record(node: AstNode, expected: string): Record<string, unknown> {
  if (typeof node.value !== 'object' || node.value === null) throw unexpected(node, expected);
  return node.value as Record<string, unknown>;
}

function child(node: AstNode, key: string): AstNode {
  const value = record(node, `a value with '${key}'`)[key];
  if (!isAstNode(value)) throw unexpected(node, `a node in '${key}'`);
  return value;
}

/** The expression inside a grouping node (parentheses, CommonExpression) or a `not`. */
export function inner(node: AstNode): AstNode {
  if (!isAstNode(node.value)) throw unexpected(node, 'a node as its value');
  return node.value;
}

/** Both operands of a binary operator node (comparisons, and, or). */
export function operands(node: AstNode): { left: AstNode; right: AstNode } {
  return { left: child(node, 'left'), right: child(node, 'right') };
}

/** The EDM type name of a Literal node (`Edm.String`, `Edm.Int32`, …) or `null` for the null literal. */
export function literalType(node: AstNode): string {
  if (typeof node.value !== 'string') throw unexpected(node, 'a type name as its value');
  return node.value;
}

/** The name and arguments of a canonical function call (MethodCallExpression). */
export function methodCall(node: AstNode): { method: string; parameters: AstNode[] } {
  const value = record(node, 'a method call');
  const parameters = value.parameters ?? [];
  if (typeof value.method !== 'string' || !Array.isArray(parameters) || !parameters.every(isAstNode)) {
    throw unexpected(node, 'a method name and parameter nodes');
  }
  return { method: value.method, parameters };
}

/** The name a FunctionExpression (a non-canonical function) was written with. */
export function functionName(node: AstNode): string {
  const fn = record(node, 'a function call').fn;
  return isAstNode(fn) ? fn.raw : node.raw;
}

/**
 * The qualified type name and the member names of an enum literal (`ns.Type'a,b'`). A numeric member (`ns.Type'1'`)
 * is an EnumMemberValue node, which has no name: undefined.
 */
export function enumLiteral(node: AstNode): { typeName: string; members: (string | undefined)[] } {
  const name = child(node, 'name');
  const values = record(child(node, 'value'), 'an enum value').values;
  if (!Array.isArray(values) || !values.every(isAstNode)) throw unexpected(node, 'enum member nodes');
  return { typeName: name.raw, members: values.map((member) => (member.type === 'EnumMemberValue' ? undefined : identifierName(member))) };
}

function identifierName(node: AstNode): string {
  const name = record(node, 'a named identifier').name;
  if (typeof name !== 'string') throw unexpected(node, 'an identifier name');
  return name;
}

const MEMBER_WRAPPERS = new Set(['FirstMemberExpression', 'MemberExpression', 'SingleNavigationExpression']);

/**
 * The segments of a property path (`state/deviceImportStatus` → two), or undefined when the member expression is
 * something else (`$it/…`, a type cast, a key predicate, a stream property, …).
 */
export function memberPath(node: AstNode): string[] | undefined {
  const path: string[] = [];
  let current: unknown = node;
  while (current) {
    if (!isAstNode(current)) return undefined;
    if (MEMBER_WRAPPERS.has(current.type)) {
      current = current.value;
    } else if (current.type === 'PropertyPathExpression') {
      const value = current.value as { type?: unknown; current?: unknown; next?: unknown } | undefined;
      if (isAstNode(value) && value.type === 'ODataIdentifier') {
        path.push(identifierName(value));
        current = undefined;
      } else if (value?.current) {
        if (!isAstNode(value.current)) throw unexpected(current, 'a path segment node');
        path.push(identifierName(value.current));
        current = value.next;
      } else {
        return undefined;
      }
    } else {
      return undefined;
    }
  }
  return path;
}

/**
 * The function a member expression calls, if it looks like a call: @odata/parser reads an unknown function `foo(1)`
 * as the property `foo` with a key predicate, so a call is recognised in the text.
 */
export function calledName(node: AstNode): string | undefined {
  const call = /^([A-Za-z_][\w.]*)\s*\(/.exec(node.raw) ?? /\/([A-Za-z_][\w.]*)\s*\(/.exec(node.raw);
  return call?.[1];
}

/** The expression and direction of a parsed $orderby item. */
export function orderByItem(parsed: unknown): OrderByItem {
  const value = (parsed as { value?: { expr?: unknown; direction?: unknown } } | undefined)?.value;
  if (!value || !isAstNode(value.expr)) throw new Error('@odata/parser built an unexpected $orderby item');
  return { expr: value.expr, descending: value.direction === -1 };
}
