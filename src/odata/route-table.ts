import { ODataError } from './errors';
import { EdmModel, EntityType, Operation } from './model';
import { parseSegment, Segment } from './resource-path';

/**
 * Resource paths (URL Conventions §4) resolved against the model alone: a singleton of the container, then
 * navigation properties, keys (`/{id}` or `('{id}')`), `$count` and bound operations, in any case. What the path
 * addresses is described by a {@link Resource}; which controller serves it is the mount table's business.
 */
export interface Resource {
  /** The navigation path from the container, keys left out: `deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/deviceIdentities`. */
  mountPath: string;
  kind: 'collection' | 'entity' | 'count' | 'operation';
  /** The type of the collection's members or of the entity (for an operation: its binding type). */
  type: EntityType;
  /** Keys of the collections passed on the way to the addressed collection (the containing upload's id). */
  parentKeys: string[];
  /** The addressed member's key; undefined for a singleton or a single-valued navigation. */
  key?: string;
  /** Set when the entity is a singleton or a single-valued navigation (no key in its path). */
  single: boolean;
  operation?: Operation;
  /** The canonical path of the collection or single entity, for @odata.context: `…Uploads('1')/deviceIdentities`. */
  contextPath: string;
}

const notFoundSegment = (segment: string) => new ODataError('ResourceNotFound', `Resource not found for the segment '${segment}'.`);

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Looks up resources in the model; built once per model. */
export class RouteTable {
  private readonly singletons: Map<string, { name: string; type: EntityType }>;
  private readonly namespace: string;

  constructor(private readonly model: EdmModel) {
    this.singletons = new Map([...model.container.singletons.values()].map((s) => [s.name.toLowerCase(), s]));
    this.namespace = [...model.entityTypes.values()][0]?.qualifiedName.split('.').slice(0, -1).join('.') ?? '';
  }

  /** Every navigation path a mount must serve: singletons and what they contain, depth first. */
  mountPaths(): { path: string; type: EntityType; collection: boolean }[] {
    const out: { path: string; type: EntityType; collection: boolean }[] = [];
    const walk = (path: string, type: EntityType, collection: boolean, seen: Set<string>) => {
      out.push({ path, type, collection });
      if (seen.has(type.qualifiedName)) return;
      for (const nav of type.navigations.values()) {
        if (nav.containsTarget) walk(`${path}/${nav.name}`, nav.target, nav.collection, new Set([...seen, type.qualifiedName]));
      }
    };
    for (const s of this.model.container.singletons.values()) walk(s.name, s.type, false, new Set());
    return out;
  }

  /** The bound operation `name` (case-insensitive, optionally namespace-qualified) of `type`, or undefined. */
  operation(type: EntityType, collection: boolean, name: string): Operation | undefined {
    const bare = name.toLowerCase().startsWith(`${this.namespace.toLowerCase()}.`) ? name.slice(this.namespace.length + 1) : name;
    return this.model.operations.find((op) => op.bindingCollection === collection && same(op.name, bare) && isOrDerives(type, op.bindingType));
  }

  /** Resolves the decoded segments below the service root; undefined for the root itself. */
  resolve(raw: string[]): Resource | undefined {
    if (raw.length === 0) return undefined;
    const segments: Segment[] = raw.map(parseSegment);
    const first = segments[0];
    const singleton = this.singletons.get(first.name.toLowerCase());
    if (!singleton || first.key !== undefined || first.call) throw notFoundSegment(raw[0]);

    let type = singleton.type;
    let mountPath = singleton.name;
    let contextPath = singleton.name;
    let collection = false;
    let single = true;
    let key: string | undefined;
    let parentKeys: string[] = [];
    const keys: string[] = [];

    for (let i = 1; i < segments.length; i++) {
      const segment = segments[i];
      const last = i === segments.length - 1;
      const operationOr404 = (bindingCollection: boolean): Resource => {
        const op = segment.key === undefined ? this.operation(type, bindingCollection, segment.name) : undefined;
        if (!op || !last) throw notFoundSegment(raw[i]);
        return { mountPath, kind: 'operation', type, parentKeys, key, single, operation: op, contextPath };
      };
      if (collection && key === undefined) {
        if (same(segment.name, '$count') && segment.key === undefined && !segment.call) {
          if (!last) throw notFoundSegment(raw[i + 1]);
          return { mountPath, kind: 'count', type, parentKeys, single: false, contextPath };
        }
        if (segment.call || segment.key !== undefined || this.operation(type, true, segment.name)) return operationOr404(true);
        key = segment.name; // the key as a segment of its own: …/deviceIdentities/{id}
        keys.push(key);
        continue;
      }
      const nav = segment.call ? undefined : [...type.navigations.values()].find((n) => n.containsTarget && same(n.name, segment.name));
      if (!nav) return operationOr404(false);
      if (key !== undefined) contextPath += `('${key.replace(/'/g, "''")}')`;
      parentKeys = [...keys];
      mountPath += `/${nav.name}`;
      contextPath += `/${nav.name}`;
      type = nav.target;
      collection = nav.collection;
      single = !nav.collection;
      key = undefined;
      if (segment.key !== undefined) {
        if (!collection) throw notFoundSegment(raw[i]);
        key = segment.key;
        keys.push(key);
      }
    }
    const kind = collection && key === undefined ? 'collection' : 'entity';
    return { mountPath, kind, type, parentKeys, key, single, contextPath };
  }
}

function isOrDerives(type: EntityType, base: EntityType): boolean {
  for (let t: EntityType | undefined = type; t; t = t.baseType) if (t === base) return true;
  return false;
}
