import { SetScope } from './entity-set.controller';
import { ODataError } from './errors';
import { compileHandlers, Handler, HandlerTable } from './handlers';
import { EdmModel } from './model';
import { ODataRequest } from './request';
import { Resource, RouteTable } from './route-table';

/**
 * Which controller serves a navigation path of the model, and how a request's scope is built there. The mount
 * table is the only per-service routing input: verbs come from the controllers' decorators, paths from the CSDL.
 */
export interface Mount {
  /** Navigation path from the container, without keys (`deviceManagement/importedWindowsAutopilotDeviceIdentities`). */
  path: string;
  controller: object;
  /** The rows a request reaches here: tenant, containing upload (its key among `parentKeys`). Default: the tenant. */
  scope?: (ctx: ODataRequest, parentKeys: string[]) => SetScope | Promise<SetScope>;
  /** For a singleton or single-valued navigation: the key of the one entity it is. */
  key?: (ctx: ODataRequest, scope: SetScope) => string | Promise<string>;
}

/** A resolved request target: the resource, the mount serving it, and its handlers by HTTP method. */
export interface Route {
  resource: Resource;
  mount: Mount;
  methods: Map<string, Handler>;
  /** The resource is a raw value (`/$count`), served as text/plain. */
  rawValue: boolean;
}

/** Methods no singleton or single-valued navigation takes here (singletons are neither created nor deleted). */
const NOT_ON_SINGLETONS = new Set(['POST', 'DELETE']);

/** The order of methods in `Allow`. */
const VERB_ORDER = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE'];

export class Router {
  private readonly routes: RouteTable;
  private readonly mounts = new Map<string, { mount: Mount; table: HandlerTable }>();

  /** Compiles the controllers' handlers and checks them against the model; throws on any disagreement. */
  constructor(
    private readonly model: EdmModel,
    mounts: Mount[],
  ) {
    this.routes = new RouteTable(model);
    const tables = new Map<object, HandlerTable>();
    for (const mount of mounts) {
      const ctor = mount.controller.constructor as abstract new (...args: never[]) => object;
      if (!tables.has(ctor)) tables.set(ctor, compileHandlers(ctor));
      this.mounts.set(mount.path.toLowerCase(), { mount, table: tables.get(ctor)! });
    }
    this.check();
  }

  private check(): void {
    const problems: string[] = [];
    const paths = this.routes.mountPaths();
    const known = new Set(paths.map((p) => p.path.toLowerCase()));
    for (const { mount } of this.mounts.values()) {
      if (!known.has(mount.path.toLowerCase())) problems.push(`mount '${mount.path}' is not a navigation path of the CSDL`);
    }
    for (const { path, type, collection } of paths) {
      const entry = this.mounts.get(path.toLowerCase());
      if (!entry) {
        problems.push(`the CSDL path '${path}' has no controller mounted`);
        continue;
      }
      const { mount, table } = entry;
      const name = mount.controller.constructor.name;
      if (!collection && !mount.key) problems.push(`mount '${path}' is single-valued and needs a key`);
      const bound = this.model.operations.filter((op) => this.routes.operation(type, op.bindingCollection, op.name) === op);
      for (const op of bound) {
        if (op.bindingCollection && !collection) continue;
        const handler = table.operations.get(op.name.toLowerCase());
        if (!handler) problems.push(`${name} has no handler for the ${op.kind} '${op.name}' the CSDL binds to ${type.name} (mounted at '${path}')`);
        else if (handler.kind !== op.kind || handler.collection !== op.bindingCollection) {
          problems.push(`${name}.${handler.handler.name} is declared as a ${handler.collection ? 'collection-' : ''}bound ${handler.kind}, the CSDL's '${op.name}' is a ${op.bindingCollection ? 'collection-' : ''}bound ${op.kind}`);
        }
      }
      for (const [opName, { handler }] of table.operations) {
        if (!bound.some((op) => op.name.toLowerCase() === opName)) problems.push(`${name}.${handler.name} handles an operation the CSDL does not bind to ${type.name}`);
      }
    }
    if (problems.length) throw new Error(`The controllers and the CSDL disagree:\n- ${problems.join('\n- ')}`);
  }

  /** The singletons of the service document. */
  singletons(): string[] {
    return [...this.model.container.singletons.keys()];
  }

  /** Resolves segments below the service root (undefined for the root itself); unknown paths throw 404. */
  resolve(segments: string[]): Route | undefined {
    const resource = this.routes.resolve(segments);
    if (!resource) return undefined;
    const entry = this.mounts.get(resource.mountPath.toLowerCase())!;
    const { table, mount } = entry;
    let methods: Map<string, Handler>;
    switch (resource.kind) {
      case 'collection':
        methods = table.collection;
        break;
      case 'count':
        methods = new Map(table.count ? [['GET', table.count]] : []);
        break;
      case 'entity':
        methods = table.entity;
        if (resource.single) methods = new Map([...methods].filter(([verb]) => !NOT_ON_SINGLETONS.has(verb)));
        break;
      case 'operation': {
        const op = table.operations.get(resource.operation!.name.toLowerCase());
        if (!op) throw new ODataError('ResourceNotFound', `Resource not found for the segment '${segments[segments.length - 1]}'.`);
        methods = new Map([[op.kind === 'function' ? 'GET' : 'POST', op.handler]]);
        break;
      }
    }
    const ordered = new Map(VERB_ORDER.filter((v) => methods.has(v)).map((v) => [v, methods.get(v)!]));
    return { resource, mount, methods: ordered, rawValue: resource.kind === 'count' };
  }
}
