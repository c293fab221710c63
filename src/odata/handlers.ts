import 'reflect-metadata';
import * as Edm from '@odata/server/lib/edm';
import * as odata from '@odata/server/lib/odata';
import { getAllPropertyNames, getFunctionParameters } from '@odata/server/lib/utils';
import { ODataRequest, Reply } from './request';

/**
 * Reads the handlers a controller declares with @odata/server's decorators — `odata.GET/POST/PUT/PATCH/DELETE`
 * (`odata.GET('$count')` for `/$count`), `odata.key`, `odata.body`, `odata.context`, `odata.result`, `Edm.Action`,
 * `Edm.Function` — once, at start, through the framework's metadata API, into a table the router looks verbs up
 * in. The framework's per-request processor stays unloaded (it costs ~100x per request).
 *
 * Parameter roles as this service gives them: `@odata.context` the {@link ODataRequest}, `@odata.result` the scope
 * the mount built (tenant, containing upload), `@odata.key` the addressed entity's key, `@odata.body` the parsed
 * JSON body (or, for a media type declared with {@link accepts}, the raw body).
 */
export type Invoke = (controller: object, ctx: ODataRequest, scope: unknown, key: string | undefined) => Promise<Reply>;

export interface Handler {
  /** The controller method's name. */
  name: string;
  invoke: Invoke;
  /** The handler takes a body (`@odata.body`). */
  body: boolean;
  /** Media types besides application/json the handler accepts (the body then stays raw in `ctx.rawBody`). */
  otherMediaTypes: string[];
}

export interface HandlerTable {
  /** Verb → handler on the collection (no key). */
  collection: Map<string, Handler>;
  /** Verb → handler on one entity (a key, or a singleton). */
  entity: Map<string, Handler>;
  /** GET …/$count */
  count?: Handler;
  /** Bound operations by lower-cased name, with whether they bind to the collection. */
  operations: Map<string, { handler: Handler; kind: 'action' | 'function'; collection: boolean }>;
}

const OTHER_MEDIA_TYPES = Symbol('autopilot:otherMediaTypes');

/** Method decorator: the handler also takes these media types (the import action's text/csv). */
export function accepts(...mediaTypes: string[]) {
  return (target: object, key: string) => Reflect.defineMetadata(OTHER_MEDIA_TYPES, mediaTypes, target, key);
}

/** A controller class: what the framework's metadata functions take. */
type Ctor = abstract new (...args: never[]) => object;

function compileHandler(ctor: Ctor, name: string): Handler {
  // The framework's metadata API is untyped: each answer is given its documented shape here.
  const proto = ctor.prototype as object;
  const params = getFunctionParameters(proto as Parameters<typeof getFunctionParameters>[0], name) as string[];
  const index = (param: unknown) => (typeof param === 'string' ? params.indexOf(param) : -1);
  const ctxAt = index(odata.getContextParameter(ctor, name) as unknown);
  const scopeAt = index(odata.getResultParameter(ctor, name) as unknown);
  const bodyAt = index(odata.getBodyParameter(ctor, name) as unknown);
  const keys = odata.getKeys(ctor, name) as { to: string }[];
  const keyAt = index(keys[0]?.to);
  const arity = params.filter(Boolean).length;
  const invoke: Invoke = (controller, ctx, scope, key) => {
    const args: unknown[] = new Array(arity);
    if (ctxAt >= 0) args[ctxAt] = ctx;
    if (scopeAt >= 0) args[scopeAt] = scope;
    if (keyAt >= 0) args[keyAt] = key;
    if (bodyAt >= 0) args[bodyAt] = ctx.body;
    return (controller as Record<string, (...a: unknown[]) => Promise<Reply>>)[name](...args);
  };
  const otherMediaTypes = (Reflect.getMetadata(OTHER_MEDIA_TYPES, proto, name) as string[] | undefined) ?? [];
  return { name, invoke, body: bodyAt >= 0, otherMediaTypes };
}

/** The handler table of a controller class, from its decorators (inherited ones included). */
export function compileHandlers(ctor: Ctor): HandlerTable {
  const table: HandlerTable = { collection: new Map(), entity: new Map(), operations: new Map() };
  const names = new Set(getAllPropertyNames(ctor.prototype as object).filter((n) => n !== 'constructor'));
  for (const name of names) {
    const descriptor = findDescriptor(ctor.prototype as object, name);
    if (!descriptor || typeof descriptor.value !== 'function') continue;
    const keyed = (odata.getKeys(ctor, name) as unknown[]).length > 0;
    const action = Boolean(Edm.isAction(ctor, name));
    const fn = Boolean(Edm.isFunction(ctor, name));
    if (action || fn) {
      table.operations.set(name.toLowerCase(), { handler: compileHandler(ctor, name), kind: action ? 'action' : 'function', collection: !keyed });
      continue;
    }
    const verbs = (odata.getMethod(ctor, name) as string[] | undefined) ?? [];
    for (const verb of verbs) {
      const handler = compileHandler(ctor, name);
      if (verb === 'get/$count') table.count = handler;
      else if (!verb.includes('/')) (keyed ? table.entity : table.collection).set(verb.toUpperCase(), handler);
      else throw new Error(`${ctor.name}.${name}: the handler kind '${verb}' is not served`);
    }
  }
  return table;
}

function findDescriptor(proto: object | null, name: string): PropertyDescriptor | undefined {
  for (let p = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const d = Object.getOwnPropertyDescriptor(p, name);
    if (d) return d;
  }
  return undefined;
}
