import { EntityRecord, Value } from './binding';
import { badRequest, ODataError } from './errors';
import { ComplexType, EntityType, EnumType, model, Operation, StructuralProperty } from './model';

/**
 * Request payloads: JSON → validated values of the EDM types, and the PATCH (merge) and PUT (replace) rules of
 * OData 4.01 §11.4.3. Nothing here touches the database: a request whose body fails here changes nothing.
 */

/** The values a body provides: only the properties present, complex values as partial objects. */
export interface ParsedEntity {
  values: Record<string, Value>;
  /** Inline collections of navigation properties (deep insert), still raw JSON. */
  navigations: Record<string, unknown[]>;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Bounds on single values (SPEC §4 Security): longer strings or larger binaries are refused with 400. */
export const MAX_STRING_LENGTH = 4000;
export const MAX_BINARY_BYTES = 64 * 1024;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
/** ISO 8601 date-time with a mandatory offset, as Edm.DateTimeOffset requires. */
const DATE_TIME_OFFSET = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,12})?)?(Z|[+-]\d{2}:\d{2})$/i;
/** Both alphabets: standard base64 (what Graph emits) and base64url (what OData's ABNF prescribes), padding optional. */
const BASE64_ANY = /^[A-Za-z0-9+/\-_]*={0,2}$/;

export function decodeBinary(text: string): Buffer | undefined {
  if (!BASE64_ANY.test(text)) return undefined;
  const unpadded = text.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return undefined;
  if (text.length !== unpadded.length && text.length % 4 !== 0) return undefined;
  return Buffer.from(unpadded.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

export function parseDateTimeOffset(text: string): number | undefined {
  const m = DATE_TIME_OFFSET.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || (s ?? 0) > 59) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return undefined;
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCDate() !== d) return undefined;
  return ms;
}

export function enumValue(type: EnumType, raw: unknown): number | undefined {
  if (typeof raw !== 'string') return undefined;
  const byName = type.members.get(raw);
  if (byName !== undefined) return byName;
  if (/^-?\d+$/.test(raw) && type.names.has(Number(raw))) return Number(raw);
  return undefined;
}

/** `@odata.type` (or 4.01 `@type`) must name the declared type, with or without `#`, in namespace or alias form. */
export function checkTypeAnnotation(body: Record<string, unknown>, declared: EntityType | ComplexType, target: string): void {
  for (const key of ['@odata.type', '@type']) {
    if (!(key in body)) continue;
    const raw = body[key];
    if (typeof raw !== 'string') throw badRequest(`The value of '${key}' must be a string naming a type.`, target || key);
    const named = model().typeByName(raw.startsWith('#') ? raw.slice(1) : raw);
    if (!named || !isSameOrDerived(named, declared)) {
      throw badRequest(
        `The type '${raw}' in '${key}' is not '${declared.qualifiedName}' or a type derived from it.`,
        target || key,
      );
    }
  }
}

function isSameOrDerived(named: EntityType | ComplexType | EnumType, declared: EntityType | ComplexType): boolean {
  if (named.kind !== declared.kind) return false;
  if (named.kind !== 'entity') return named.qualifiedName === declared.qualifiedName;
  if (named.abstract) return false;
  for (let t: EntityType | undefined = named; t; t = t.baseType) {
    if (t.qualifiedName === declared.qualifiedName) return true;
  }
  return false;
}

/** A short description of a JSON value for an error message: never serialises a large or deep value. */
function describeJson(raw: unknown): string {
  if (Array.isArray(raw)) return 'an array';
  if (raw !== null && typeof raw === 'object') return 'an object';
  const text = JSON.stringify(raw) ?? String(raw);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function convert(property: StructuralProperty, raw: unknown, target: string): Value {
  if (raw === null) {
    if (!property.nullable) throw badRequest(`The property '${target}' cannot be null.`, target);
    return null;
  }
  const type = property.type;
  const wrong = (expected: string) => badRequest(`The property '${target}' expects ${expected}; got ${describeJson(raw)}.`, target);
  switch (type.kind) {
    case 'enum': {
      const value = enumValue(type, raw);
      if (value === undefined) {
        throw badRequest(
          `The value ${describeJson(raw)} is not a member of '${type.qualifiedName}' (${[...type.members.keys()].join(', ')}).`,
          target,
        );
      }
      return value;
    }
    case 'complex':
      if (!isPlainObject(raw)) throw wrong(`an object of type '${type.qualifiedName}'`);
      return parseComplex(type, raw, target);
    case 'primitive':
      switch (type.name) {
        case 'Edm.String':
          if (typeof raw !== 'string') throw wrong('a string');
          if (raw.length > MAX_STRING_LENGTH) throw badRequest(`The property '${target}' is longer than ${MAX_STRING_LENGTH} characters.`, target);
          // PostgreSQL text cannot hold U+0000; refusing it everywhere keeps both engines alike.
          if (raw.includes('\u0000')) throw badRequest(`The property '${target}' contains the NUL character (U+0000).`, target);
          return raw;
        case 'Edm.Int32':
          if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < INT32_MIN || raw > INT32_MAX) throw wrong('a 32-bit integer');
          return raw;
        case 'Edm.Binary': {
          const bytes = typeof raw === 'string' ? decodeBinary(raw) : undefined;
          if (!bytes) {
            throw badRequest(
              `Cannot convert the literal ${describeJson(raw)} to the expected type 'Edm.Binary' (base64 or base64url).`,
              target,
            );
          }
          if (bytes.length > MAX_BINARY_BYTES) throw badRequest(`The property '${target}' is larger than ${MAX_BINARY_BYTES} bytes.`, target);
          return bytes;
        }
        case 'Edm.DateTimeOffset': {
          const ms = typeof raw === 'string' ? parseDateTimeOffset(raw) : undefined;
          if (ms === undefined) throw wrong('an ISO 8601 date-time with offset (Edm.DateTimeOffset)');
          return ms;
        }
      }
  }
}

function parseComplex(type: ComplexType, body: Record<string, unknown>, path: string): Record<string, unknown> {
  checkTypeAnnotation(body, type, `${path}/@odata.type`);
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(body)) {
    if (key.includes('@')) continue; // annotations and control information never cause an error (JSON §4.5)
    const member = type.properties.get(key);
    if (!member) throw badRequest(`The property '${key}' does not exist on type '${type.qualifiedName}'.`, `${path}/${key}`);
    out[key] = convert(member, raw, `${path}/${key}`);
  }
  return out;
}

/**
 * Validates an entity body against its type. Unknown properties, wrong JSON types, null on non-nullable properties,
 * invalid enum members and undecodable Binary → 400 naming the property. Navigation properties are accepted only
 * where `inline` allows them (deep insert).
 */
export function parseEntity(type: EntityType, body: unknown, inline: ReadonlySet<string> = new Set()): ParsedEntity {
  if (!isPlainObject(body)) throw badRequest(`The request body must be a JSON object of type '${type.qualifiedName}'.`);
  checkTypeAnnotation(body, type, '@odata.type');
  const values: Record<string, Value> = {};
  const navigations: Record<string, unknown[]> = {};
  for (const [key, raw] of Object.entries(body)) {
    if (key.endsWith('@odata.bind') || key.endsWith('@bind')) {
      throw badRequest(`'${key}': contained entities cannot be bound by reference; send them inline.`, key);
    }
    if (key.includes('@')) continue;
    const property = type.properties.get(key);
    if (property) {
      values[key] = convert(property, raw, key);
      continue;
    }
    const navigation = type.navigations.get(key);
    if (navigation && inline.has(key)) {
      if (!Array.isArray(raw)) throw badRequest(`The navigation property '${key}' expects an array of entities.`, key);
      navigations[key] = raw;
      continue;
    }
    if (navigation) throw badRequest(`The navigation property '${key}' cannot be set in this request.`, key);
    throw badRequest(`The property '${key}' does not exist on type '${type.qualifiedName}'.`, key);
  }
  return { values, navigations };
}

function defaultOf(property: StructuralProperty): Value {
  if (property.nullable) return null;
  const type = property.type;
  if (type.kind === 'enum') return Math.min(...type.members.values());
  if (type.kind === 'complex') return defaultsOf(type);
  if (type.name === 'Edm.Int32') return 0;
  if (type.name === 'Edm.DateTimeOffset') return 0;
  if (type.name === 'Edm.Binary') return Buffer.alloc(0);
  return '';
}

export function defaultsOf(type: ComplexType): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const member of type.properties.values()) out[member.name] = defaultOf(member);
  return out;
}

/** PATCH: provided properties replace, complex values merge recursively, omitted properties stay as they are. */
export function mergeInto(type: EntityType, current: EntityRecord, patch: Record<string, Value>): EntityRecord {
  const next: EntityRecord = { ...current };
  for (const [name, value] of Object.entries(patch)) {
    const property = type.properties.get(name)!;
    if (property.type.kind === 'complex' && value !== null) {
      const base = (current[name] as Record<string, unknown> | null) ?? defaultsOf(property.type);
      next[name] = { ...base, ...(value as Record<string, unknown>) };
    } else {
      next[name] = value;
    }
  }
  return next;
}

/** PUT: every updatable property takes the body's value or its default (null where nullable). */
export function replaceWith(type: EntityType, current: EntityRecord, body: Record<string, Value>, updatable: Iterable<string>): EntityRecord {
  const next: EntityRecord = { ...current };
  for (const name of updatable) {
    const property = type.properties.get(name)!;
    const value = body[name];
    if (value === undefined) next[name] = defaultOf(property);
    else if (property.type.kind === 'complex' && value !== null) next[name] = { ...defaultsOf(property.type), ...(value as Record<string, unknown>) };
    else next[name] = value;
  }
  return next;
}

/** Re-targets a validation error at an item of an array (a parameter's items, a delta payload's entries). */
export function withTarget<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ODataError && err.code === 'BadRequest') {
      throw badRequest(`${prefix}: ${err.message}`, err.target ? `${prefix}/${err.target}` : prefix);
    }
    throw err;
  }
}

/**
 * The parameters of an action call (OData 4.01 Part 1 §11.5.4.1): a JSON object whose members are the action's
 * non-binding parameters. Names match in any case (Graph's scripts send `GroupTag`); a missing body or `{}` means
 * no parameters; an unknown parameter or a value of the wrong type is a 400 naming it. Primitive and enum
 * parameters only.
 */
export function parseActionParameters(op: Operation, body: unknown): Record<string, Value> {
  if (body === undefined) return {};
  if (!isPlainObject(body)) throw badRequest(`The parameters of the action '${op.name}' must be a JSON object.`);
  const byName = new Map(op.parameters.map((p) => [p.name.toLowerCase(), p]));
  const out: Record<string, Value> = {};
  for (const [key, raw] of Object.entries(body)) {
    if (key.includes('@')) continue;
    const parameter = byName.get(key.toLowerCase());
    if (!parameter) {
      const known = op.parameters.map((p) => p.name).join(', ') || 'none';
      throw badRequest(`The action '${op.name}' has no parameter '${key}' (its parameters: ${known}).`, key);
    }
    const type = parameter.type.startsWith('Edm.') ? ({ kind: 'primitive', name: parameter.type } as StructuralProperty['type']) : model().typeByName(parameter.type);
    if (!type || type.kind === 'entity' || parameter.collection) throw new Error(`${op.name}: parameter ${parameter.name} of type ${parameter.type} is not supported`);
    out[parameter.name] = convert({ name: parameter.name, nullable: parameter.nullable, type }, raw, parameter.name);
  }
  return out;
}
