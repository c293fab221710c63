import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { xml2json } from 'odata-csdl';

/**
 * The EDM model, read from the CSDL contract in metadata/ — the one document that drives $metadata, payload
 * validation, serialisation and query translation.
 */
export const NAMESPACE = 'microsoft.graph';
// ts-jest and ts-node run this file from src/odata, compiled code from dist/src/odata: metadata/ is two or three levels up.
const METADATA_CANDIDATES = [
  join(__dirname, '..', '..', 'metadata', 'graph-autopilot.xml'),
  join(__dirname, '..', '..', '..', 'metadata', 'graph-autopilot.xml'),
];
/** The CSDL contract, metadata/graph-autopilot.xml. */
export const METADATA_FILE = METADATA_CANDIDATES.find((candidate) => existsSync(candidate)) ?? METADATA_CANDIDATES[0];

export type EdmPrimitive = 'Edm.String' | 'Edm.Binary' | 'Edm.Int32' | 'Edm.DateTimeOffset';

export interface EnumType {
  kind: 'enum';
  name: string;
  qualifiedName: string;
  members: Map<string, number>;
  names: Map<number, string>;
}

export interface StructuralProperty {
  name: string;
  nullable: boolean;
  type: { kind: 'primitive'; name: EdmPrimitive } | EnumType | ComplexType;
}

export interface NavigationProperty {
  name: string;
  target: EntityType;
  collection: boolean;
  containsTarget: boolean;
}

export interface ComplexType {
  kind: 'complex';
  name: string;
  qualifiedName: string;
  properties: Map<string, StructuralProperty>;
}

export interface EntityType {
  kind: 'entity';
  name: string;
  qualifiedName: string;
  abstract: boolean;
  baseType?: EntityType;
  key: string[];
  /** Own and inherited structural properties, in document order (inherited first). */
  properties: Map<string, StructuralProperty>;
  navigations: Map<string, NavigationProperty>;
}

/** A bound action or function (CSDL §12): what it binds to, its parameters and its result. */
export interface Operation {
  name: string;
  kind: 'action' | 'function';
  bindingType: EntityType;
  /** Bound to a collection of `bindingType` rather than to one entity. */
  bindingCollection: boolean;
  /** The non-binding parameters. */
  parameters: { name: string; type: string; collection: boolean; nullable: boolean }[];
  returnType?: { type: string; collection: boolean };
}

/** A singleton of the entity container: the entry points of every resource path. */
export interface Singleton {
  name: string;
  type: EntityType;
}

export interface EdmModel {
  xml: string;
  json: Record<string, unknown>;
  entityTypes: Map<string, EntityType>;
  complexTypes: Map<string, ComplexType>;
  enumTypes: Map<string, EnumType>;
  container: { name: string; singletons: Map<string, Singleton> };
  operations: Operation[];
  /** Qualified type names accepted for `@odata.type`, mapped to the type they name (namespace or alias form). */
  typeByName(name: string): EntityType | ComplexType | EnumType | undefined;
}

/** The members of a CSDL JSON element (type, property, navigation) that the model reads. */
interface CsdlElement {
  $Kind?: string;
  $Type?: string;
  $Nullable?: boolean;
  $Collection?: boolean;
  $ContainsTarget?: boolean;
  $Abstract?: boolean;
  $Key?: string[];
  $BaseType?: string;
  [member: string]: unknown;
}

/** A bound action or function overload, and its parameters and return type. */
interface CsdlOperation {
  $Kind: string;
  $IsBound?: boolean;
  $Parameter?: (CsdlElement & { $Name: string })[];
  $ReturnType?: CsdlElement;
}

interface CsdlSchema {
  $Alias: string;
  [element: string]: unknown;
}

const isElement = (x: unknown): x is CsdlElement => typeof x === 'object' && x !== null;

/** Builds the model from CSDL XML (by default the contract in metadata/); throws on a type reference that resolves to nothing. */
export function loadModel(xml: string = readFileSync(METADATA_FILE, 'utf8')): EdmModel {
  const json = xml2json(xml, { annotations: true, strict: true }) as Record<string, unknown>;
  const schema = json[NAMESPACE] as CsdlSchema;
  const alias = schema.$Alias;
  const qualify = (ref: string) => (ref.startsWith(`${alias}.`) ? `${NAMESPACE}.${ref.slice(alias.length + 1)}` : ref);

  const enumTypes = new Map<string, EnumType>();
  const complexTypes = new Map<string, ComplexType>();
  const entityTypes = new Map<string, EntityType>();

  for (const [name, def] of Object.entries(schema)) {
    if (name.startsWith('$') || name.startsWith('@') || !isElement(def)) continue;
    const qualifiedName = `${NAMESPACE}.${name}`;
    if (def.$Kind === 'EnumType') {
      const members = new Map<string, number>();
      for (const [member, value] of Object.entries(def)) {
        if (!member.startsWith('$') && !member.includes('@')) members.set(member, value as number);
      }
      enumTypes.set(qualifiedName, {
        kind: 'enum',
        name,
        qualifiedName,
        members,
        names: new Map([...members].map(([k, v]) => [v, k])),
      });
    } else if (def.$Kind === 'ComplexType') {
      complexTypes.set(qualifiedName, { kind: 'complex', name, qualifiedName, properties: new Map() });
    } else if (def.$Kind === 'EntityType') {
      entityTypes.set(qualifiedName, {
        kind: 'entity',
        name,
        qualifiedName,
        abstract: def.$Abstract === true,
        key: def.$Key ?? [],
        properties: new Map(),
        navigations: new Map(),
      });
    }
  }

  const resolveType = (ref: string | undefined): StructuralProperty['type'] => {
    const qualified = qualify(ref ?? 'Edm.String');
    if (qualified.startsWith('Edm.')) return { kind: 'primitive', name: qualified as EdmPrimitive };
    const found = enumTypes.get(qualified) ?? complexTypes.get(qualified);
    if (!found) throw new Error(`CSDL references unknown type ${ref}`);
    return found;
  };
  const element = (name: string): CsdlElement => {
    const def = schema[name];
    if (!isElement(def)) throw new Error(`CSDL has no element ${name}`);
    return def;
  };
  const structural = (def: CsdlElement, into: Map<string, StructuralProperty>) => {
    for (const [name, prop] of Object.entries(def)) {
      if (name.startsWith('$') || name.includes('@') || !isElement(prop) || prop.$Kind === 'NavigationProperty') continue;
      into.set(name, { name, nullable: prop.$Nullable === true, type: resolveType(prop.$Type) });
    }
  };

  for (const complex of complexTypes.values()) structural(element(complex.name), complex.properties);

  const built = new Set<string>();
  const buildEntity = (entity: EntityType) => {
    if (built.has(entity.qualifiedName)) return;
    built.add(entity.qualifiedName);
    const def = element(entity.name);
    if (def.$BaseType) {
      const base = entityTypes.get(qualify(def.$BaseType));
      if (!base) throw new Error(`CSDL references unknown base type ${def.$BaseType}`);
      buildEntity(base);
      entity.baseType = base;
      entity.key = entity.key.length ? entity.key : base.key;
      for (const [k, v] of base.properties) entity.properties.set(k, v);
      for (const [k, v] of base.navigations) entity.navigations.set(k, v);
    }
    structural(def, entity.properties);
    for (const [name, prop] of Object.entries(def)) {
      if (!isElement(prop) || prop.$Kind !== 'NavigationProperty') continue;
      const target = entityTypes.get(qualify(prop.$Type ?? ''));
      if (!target) throw new Error(`CSDL navigation ${name} references unknown type ${prop.$Type}`);
      entity.navigations.set(name, {
        name,
        target,
        collection: prop.$Collection === true,
        containsTarget: prop.$ContainsTarget === true,
      });
    }
  };
  for (const entity of entityTypes.values()) buildEntity(entity);

  const entityRef = (ref: string, what: string) => {
    const found = entityTypes.get(qualify(ref));
    if (!found) throw new Error(`CSDL ${what} references unknown entity type ${ref}`);
    return found;
  };

  const operations: Operation[] = [];
  for (const [name, overloads] of Object.entries(schema)) {
    if (!Array.isArray(overloads)) continue;
    for (const def of overloads as CsdlOperation[]) {
      if (def.$Kind !== 'Action' && def.$Kind !== 'Function') continue;
      if (def.$IsBound !== true) throw new Error(`CSDL operation ${name} is unbound; only bound operations are served`);
      const [binding, ...rest] = def.$Parameter ?? [];
      if (!binding) throw new Error(`CSDL bound operation ${name} has no binding parameter`);
      operations.push({
        name,
        kind: def.$Kind === 'Action' ? 'action' : 'function',
        bindingType: entityRef(binding.$Type ?? '', `operation ${name}`),
        bindingCollection: binding.$Collection === true,
        parameters: rest.map((p) => ({ name: p.$Name, type: qualify(p.$Type ?? 'Edm.String'), collection: p.$Collection === true, nullable: p.$Nullable !== false })),
        returnType: def.$ReturnType && { type: qualify(def.$ReturnType.$Type ?? 'Edm.String'), collection: def.$ReturnType.$Collection === true },
      });
    }
  }

  const containerName = (typeof json.$EntityContainer === 'string' ? json.$EntityContainer : '').split('.').pop() ?? '';
  const containerDef = (schema[containerName] ?? {}) as Record<string, unknown>;
  const singletons = new Map<string, Singleton>();
  for (const [name, def] of Object.entries(containerDef)) {
    if (name.startsWith('$') || name.includes('@') || !isElement(def)) continue;
    if (def.$Collection === true) throw new Error(`CSDL entity set ${name}: the service serves singletons and their containment only`);
    singletons.set(name, { name, type: entityRef(def.$Type ?? '', `singleton ${name}`) });
  }

  const typeByName = (name: string) => {
    const qualified = qualify(name);
    return entityTypes.get(qualified) ?? complexTypes.get(qualified) ?? enumTypes.get(qualified);
  };
  return { xml, json, entityTypes, complexTypes, enumTypes, container: { name: containerName, singletons }, operations, typeByName };
}

let cached: EdmModel | undefined;
/** The service's model, read once per process. */
export function model(): EdmModel {
  cached ??= loadModel();
  return cached;
}


export function entityType(name: string): EntityType {
  const found = model().entityTypes.get(name);
  if (!found) throw new Error(`No entity type ${name}`);
  return found;
}

export function enumType(name: string): EnumType {
  const found = model().enumTypes.get(name);
  if (!found) throw new Error(`No enum type ${name}`);
  return found;
}
