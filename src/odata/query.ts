import { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { Dialect, quote as q } from '../db/dialect';
import { Binding } from './binding';
import { badRequest, notImplemented } from './errors';
import { parseFilter, parseOrderBy } from './filter.parser';
import { ExpressionTranslator, Parameters } from './filter.sql';
import { splitTopLevel } from './lexical';
import { EntityType } from './model';

/**
 * System query options: read from the raw query string (4.01: `$` optional, names case-insensitive), validated against
 * the entity type, and applied to a TypeORM SelectQueryBuilder with every literal bound as a parameter.
 */
export interface QueryOptions {
  filter?: { source: string; node: ReturnType<typeof parseFilter> };
  orderby?: { source: string; items: ReturnType<typeof parseOrderBy> };
  select?: Set<string>;
  top?: number;
  skip?: number;
  count?: boolean;
  skiptoken?: string;
  expand?: Map<string, QueryOptions>;
}

const SYSTEM_OPTIONS = new Set([
  'filter', 'select', 'orderby', 'top', 'skip', 'count', 'expand', 'skiptoken', 'format', 'search', 'apply',
  'compute', 'levels', 'deltatoken', 'schemaversion', 'index', 'id',
]);

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw badRequest(`The query option '${what}' is not correctly percent-encoded.`, what);
  }
}

/** Splits the raw query string into (lower-cased, $-less) option names and decoded values; custom options are kept aside. */
export function splitQuery(rawQuery: string): Map<string, { name: string; value: string }> {
  const options = new Map<string, { name: string; value: string }>();
  if (!rawQuery) return options;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = decode(eq < 0 ? part : part.slice(0, eq), part.slice(0, 40));
    const value = eq < 0 ? '' : decode(part.slice(eq + 1), rawName);
    const key = rawName.replace(/^\$/, '').toLowerCase();
    if (!SYSTEM_OPTIONS.has(key)) {
      if (rawName.startsWith('$')) throw badRequest(`The query option '${rawName}' is not supported.`, rawName);
      continue; // a custom query option: allowed and not ours to interpret
    }
    if (options.has(key)) throw badRequest(`The query option '${rawName}' is specified more than once.`, rawName);
    options.set(key, { name: rawName, value });
  }
  return options;
}

function nonNegativeInteger(value: string, name: string): number {
  if (!/^\d{1,9}$/.test(value)) throw badRequest(`The value of '${name}' must be a non-negative integer, got '${value}'.`, name);
  return Number(value);
}

function boolean(value: string, name: string): boolean {
  // ABNF literals are case-insensitive: TRUE and True are booleanValue too.
  const lower = value.toLowerCase();
  if (lower !== 'true' && lower !== 'false') throw badRequest(`The value of '${name}' must be true or false, got '${value}'.`, name);
  return lower === 'true';
}

/** `ns.Type/prop` → `prop` when the cast names the type itself (it has no derived types); another type is a 400. */
function withoutTypeCast(item: string, type: EntityType, name: string): string {
  const slash = item.indexOf('/');
  const first = slash < 0 ? item : item.slice(0, slash);
  if (slash < 0 || !first.includes('.')) return item;
  const qualified = first.replace(/^graph\./, 'microsoft.graph.');
  if (qualified !== type.qualifiedName) {
    throw badRequest(`'${first}' in ${name} is not the type '${type.qualifiedName}' or a type derived from it.`, name);
  }
  return item.slice(slash + 1);
}

function parseSelect(value: string, type: EntityType, name: string): Set<string> {
  const selected = new Set<string>();
  if (!value.trim()) throw badRequest(`${name} is empty; name the properties to select, or leave ${name} out.`, name);
  for (const item of value.split(',').map((s) => s.trim())) {
    if (!item) throw badRequest(`${name} has an empty item; properties are separated by single commas.`, name);
    if (item === '*') {
      for (const p of type.properties.keys()) selected.add(p);
      continue;
    }
    const bare = withoutTypeCast(item, type, name);
    if (bare.includes('/')) throw notImplemented(`Selecting part of a complex property ('${item}') is not supported; select '${bare.split('/')[0]}'.`, name);
    if (/^[A-Za-z_]\w*\(.*\)$/.test(bare)) throw notImplemented(`Nested options in ${name} ('${item}') are not supported.`, name);
    if (!type.properties.has(bare) && !type.navigations.has(bare)) {
      throw badRequest(`Could not find a property named '${item}' on type '${type.qualifiedName}' (in ${name}).`, name);
    }
    if (type.properties.has(bare)) selected.add(bare);
  }
  return selected;
}

/** Splits `a($x=1;$y=2),b` at top-level commas / semicolons, respecting parentheses and string literals. */
function splitBalanced(value: string, separator: ',' | ';'): string[] {
  const { parts, stoppedAt, depth } = splitTopLevel(value, separator, { stopAtClose: true });
  if (stoppedAt === 'close') throw badRequest(`Unbalanced parentheses in '${value}'.`);
  if (stoppedAt === 'openString' || depth !== 0) throw badRequest(`Unbalanced parentheses or quotes in '${value}'.`);
  return parts.map((part) => part.text);
}

function parseExpand(value: string, type: EntityType, name: string): Map<string, QueryOptions> {
  const expand = new Map<string, QueryOptions>();
  for (const item of splitBalanced(value, ',').map((s) => s.trim())) {
    const open = item.indexOf('(');
    const navName = open < 0 ? item : item.slice(0, open);
    if (!item.endsWith(')') && open >= 0) throw badRequest(`Syntax error in ${name}: '${item}'.`, name);
    const targets = navName === '*' ? [...type.navigations.keys()] : [navName];
    if (navName.includes('/')) throw notImplemented(`Multi-level expansion ('${navName}') is not supported.`, name);
    for (const target of targets) {
      const navigation = type.navigations.get(target);
      if (!navigation) throw badRequest(`Could not find a navigation property named '${target}' on type '${type.qualifiedName}' (in ${name}).`, name);
      if (expand.has(target)) throw badRequest(`'${target}' is expanded more than once.`, name);
      const nested = new Map<string, { name: string; value: string }>();
      if (open >= 0) {
        for (const option of splitBalanced(item.slice(open + 1, -1), ';')) {
          const eq = option.indexOf('=');
          if (eq < 0) throw badRequest(`Syntax error in the options of '${target}' in ${name}: '${option}'.`, name);
          const optName = option.slice(0, eq).trim();
          const key = optName.replace(/^\$/, '').toLowerCase();
          if (!SYSTEM_OPTIONS.has(key)) throw badRequest(`The query option '${optName}' is not supported inside ${name}.`, name);
          if (nested.has(key)) throw badRequest(`The query option '${optName}' is specified more than once inside ${name}.`, name);
          nested.set(key, { name: `${name}/${target}/${optName}`, value: option.slice(eq + 1) });
        }
      }
      expand.set(target, readOptions(nested, navigation.target, true, true));
    }
  }
  return expand;
}

function readOptions(options: Map<string, { name: string; value: string }>, type: EntityType, collection: boolean, nested = false): QueryOptions {
  const result: QueryOptions = {};
  for (const [key, { name, value }] of options) {
    const collectionOnly = () => {
      if (!collection) throw badRequest(`The query option '${name}' applies to collections only.`, name);
    };
    switch (key) {
      case 'filter':
        collectionOnly();
        result.filter = { source: value, node: parseFilter(value) };
        break;
      case 'orderby':
        collectionOnly();
        result.orderby = { source: value, items: parseOrderBy(value) };
        break;
      case 'select':
        result.select = parseSelect(value, type, name);
        break;
      case 'top':
        collectionOnly();
        result.top = nonNegativeInteger(value, name);
        break;
      case 'skip':
        collectionOnly();
        result.skip = nonNegativeInteger(value, name);
        break;
      case 'count':
        collectionOnly();
        result.count = boolean(value, name);
        break;
      case 'skiptoken':
        collectionOnly();
        result.skiptoken = value;
        break;
      case 'expand':
        result.expand = parseExpand(value, type, name);
        break;
      case 'format':
        break; // $format is content negotiation's (src/server.ts reads it from the query string)
      case 'search':
        throw notImplemented(`The query option '${name}' is not supported by this service.`, name);
      case 'levels':
        if (nested) throw notImplemented(`The query option '${name}' is not supported: no navigation property of this service is recursive.`, name);
        throw badRequest(`The query option '${name}' is only allowed inside $expand.`, name);
      default:
        throw notImplemented(`The query option '${name}' is not supported by this service.`, name);
    }
  }
  return result;
}

/** Reads the query options of a request addressed to a collection (`collection`) or to a single entity. */
export function parseQueryOptions(rawQuery: string, type: EntityType, collection: boolean): QueryOptions {
  return readOptions(splitQuery(rawQuery), type, collection);
}


/** Adds $filter and $orderby (plus the stable `id` tie-break) to a query builder whose alias is `t`. */
export function applyFilterAndOrder<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  options: QueryOptions,
  binding: Binding,
  dialect: Dialect,
  prefix = 'f',
): SelectQueryBuilder<T> {
  const params = new Parameters(prefix);
  const translator = new ExpressionTranslator(binding, dialect, params);
  if (options.filter) qb.andWhere(translator.condition(options.filter.node));
  for (const item of options.orderby?.items ?? []) {
    const sql = translator.value(item.expr);
    // OData sorts nulls first ascending and last descending on both engines.
    qb.addOrderBy(sql, item.descending ? 'DESC' : 'ASC', item.descending ? 'NULLS LAST' : 'NULLS FIRST');
  }
  qb.addOrderBy(`t.${q('id')}`, 'ASC');
  qb.setParameters(params.values);
  return qb;
}

/** `/$count` takes $filter only (and $format); the options that shape a collection make no sense on a number. */
export function checkCountSegmentOptions(options: QueryOptions): void {
  const names = { top: '$top', skip: '$skip', orderby: '$orderby', select: '$select', expand: '$expand', count: '$count', skiptoken: '$skiptoken' } as const;
  for (const [key, name] of Object.entries(names)) {
    if (options[key as keyof typeof names] !== undefined) {
      throw badRequest(`The query option '${name}' does not apply to /$count; only $filter does.`, name);
    }
  }
}

/** Engine limits an accepted query can still reach (parser stack, expression depth, bound parameters): a 400, not a 500. */
export function queryLimitError(err: unknown): unknown {
  const message = err instanceof Error ? err.message : '';
  if (/parser stack overflow|expression tree is too large|too many SQL variables|stack depth limit exceeded|number of parameters must be/i.test(message)) {
    return badRequest('The query is too complex for the database; simplify $filter or $orderby.');
  }
  return err;
}

/** Where-clause only ($filter), for counts. */
export function applyFilter<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, options: QueryOptions, binding: Binding, dialect: Dialect, prefix = 'c'): SelectQueryBuilder<T> {
  if (!options.filter) return qb;
  const params = new Parameters(prefix);
  qb.andWhere(new ExpressionTranslator(binding, dialect, params).condition(options.filter.node));
  qb.setParameters(params.values);
  return qb;
}
