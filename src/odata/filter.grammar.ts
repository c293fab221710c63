/*
 * What $filter and $orderby accept: the operators and canonical functions this service translates, the ones it knows
 * but does not implement (501), and the limits that keep every accepted expression within what both engines run.
 */

/** Comparison nodes of @odata/parser → SQL operators. */
export const COMPARISONS: Record<string, string> = {
  EqualsExpression: '=',
  NotEqualsExpression: '<>',
  LesserThanExpression: '<',
  LesserOrEqualsExpression: '<=',
  GreaterThanExpression: '>',
  GreaterOrEqualsExpression: '>=',
};

/** Nodes of @odata/parser that are valid OData but not implemented here (501), and how the message names them. */
export const UNSUPPORTED: Record<string, string> = {
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

/** Nodes of @odata/parser that only group another expression. */
export const GROUPING = new Set(['CommonExpression', 'ParenExpression', 'BoolParenExpression']);
/** Nodes of @odata/parser that add no nesting to the SQL. */
export const LEAVES = new Set(['Literal', 'Enum', 'FirstMemberExpression', 'MemberExpression', 'PropertyPathExpression']);

export const DATE_PARTS = new Set(['year', 'month', 'day', 'hour', 'minute', 'second']);
export const IMPLEMENTED_FUNCTIONS =
  'contains, startswith, endswith, tolower, toupper, trim, length, indexof, substring, concat, year, month, day, hour, minute, second';
export const IMPLEMENTED = new Set(IMPLEMENTED_FUNCTIONS.split(', '));

/** Canonical OData functions this service does not implement (501); any other unknown function name is a 400. */
export const UNSUPPORTED_FUNCTIONS = new Set([
  'fractionalseconds', 'totalseconds', 'totaloffsetminutes', 'date', 'time', 'now', 'mindatetime', 'maxdatetime',
  'round', 'floor', 'ceiling', 'isof', 'cast', 'matchesPattern', 'hassubset', 'hassubsequence', 'case',
  'geo.distance', 'geo.length', 'geo.intersects',
]);

export const BINARY_OPERATORS = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le', 'and', 'or', 'add', 'sub', 'mul', 'div', 'divby', 'mod', 'has', 'in']);
export const ARITHMETIC_OPERATORS = new Set(['add', 'sub', 'mul', 'div', 'divby', 'mod']);
/** The words allowed after an $orderby expression. */
export const DIRECTIONS = new Set(['asc', 'desc']);
/** Argument counts of the canonical functions the shape check knows. */
export const ARITY = new Map<string, number[]>([
  ['contains', [2]], ['startswith', [2]], ['endswith', [2]], ['indexof', [2]], ['concat', [2]], ['substring', [2, 3]],
  ['length', [1]], ['tolower', [1]], ['toupper', [1]], ['trim', [1]],
  ['year', [1]], ['month', [1]], ['day', [1]], ['hour', [1]], ['minute', [1]], ['second', [1]],
]);

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
