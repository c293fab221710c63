// The controller base class alone: the package index also loads swagger-ui and the typed server (~66 MB RSS).
import { ODataController } from '@odata/server/lib/controller';
import * as odata from '@odata/server/lib/odata';
import { EntityManager } from 'typeorm';
import { Page, Scope, ScopedTable, Stored } from '../db/scoped-table';
import { EntityRecord, Value } from './binding';
import { badRequest, notFound, ODataError } from './errors';
import { newId } from './ids';
import { EntityType } from './model';
import { nextLink } from './paging';
import { mergeInto, parseEntity, replaceWith, withTarget } from './payload';
import { parseQueryOptions, QueryOptions } from './query';
import { ODataRequest, Reply } from './request';
import { checkWritePreconditions, collectionReply, contextUrl, entityJson, entityReply, notModified, withContext, writeReply } from './respond';

/** Where a request's rows live: the row scope (tenant, containing upload) and how to prove the container exists. */
export interface SetScope extends Scope {
  /**
   * 404 when the containing entity (an upload) does not exist. Writes that add members call it inside their
   * transaction (`manager`), which keeps the container until they commit; collection reads only when they find
   * nothing (members are looked up within the container anyway).
   */
  requireContainer?: (manager?: EntityManager) => Promise<void>;
}

/** A new entity of this set before it is written: the record, and the writes of its inline children (deep insert). */
export interface NewEntity {
  record: EntityRecord;
  /** Writes inline children in the create's transaction; returns their JSON for the reply. */
  children?: (manager: EntityManager, id: string) => Promise<Record<string, unknown>>;
}

/**
 * The generic behaviour of an entity set, written once (CAP's generic CRUD + hooks): list with server-driven
 * paging, `/$count`, get by key with If-None-Match, create, PATCH (merge), PUT (replace) and DELETE with
 * If-Match preconditions and `Prefer: return`, and the 4.01 collection PATCH (upsert or delta payload).
 * A controller says only what is special about its set, through the protected hooks below.
 */
export abstract class EntitySetController extends ODataController {
  constructor(protected readonly table: ScopedTable) {
    super();
  }

  protected get type(): EntityType {
    return this.table.binding.type;
  }

  protected get db() {
    return this.table.db;
  }

  // ---- hooks ----

  /** Properties a client may write; the others are server-set (ignored in bodies). */
  protected writable(): string[] {
    return [...this.type.properties.keys()].filter((p) => !this.type.key.includes(p));
  }

  /** Navigation properties a create body may carry inline (deep insert). */
  protected inlineNavigations(): ReadonlySet<string> {
    return new Set();
  }

  /** A new entity from a validated create body: server-set values filled in, inline children validated. */
  protected abstract newEntity(ctx: ODataRequest, scope: SetScope, values: Record<string, Value>, navigations: Record<string, unknown[]>): NewEntity;

  /** Extra JSON per entity for `$expand` (keyed by id). */
  protected expand(_m: EntityManager, _ctx: ODataRequest, _scope: SetScope, _items: Stored[], _options: QueryOptions): Promise<Map<string, Record<string, unknown>>> {
    return Promise.resolve(new Map<string, Record<string, unknown>>());
  }

  /** Runs first in the delete's transaction: locks rows that writers lock before this one (dependants). */
  protected async lockForRemove(_m: EntityManager, _scope: SetScope, _key: string): Promise<void> {}

  /** Runs in the delete's transaction before the row goes (refuse with an ODataError, or remove dependants). */
  protected async beforeRemove(_m: EntityManager, _ctx: ODataRequest, _scope: SetScope, _current: Stored): Promise<void> {}

  /** Called after a transaction that created entities has committed (in a batch's atomicity group: after the group's commit). */
  protected created(): void {}

  // ---- handlers ----

  @odata.GET
  async list(@odata.context ctx: ODataRequest, @odata.result scope: SetScope): Promise<Reply> {
    const options = parseQueryOptions(ctx.rawQuery, this.type, true);
    const pageSize = Math.min(ctx.prefer.maxPageSize ?? ctx.pageSize.default, ctx.pageSize.max);
    const { page, expanded } = await this.db.read(async (m) => {
      const page: Page = await this.table.page(m, scope, options, pageSize);
      return { page, expanded: await this.expand(m, ctx, scope, page.items, options) };
    });
    if (page.items.length === 0) await scope.requireContainer?.();
    const headers = ctx.prefer.maxPageSize ? { 'Preference-Applied': `odata.maxpagesize=${pageSize}` } : undefined;
    return collectionReply(
      ctx,
      this.type,
      { ...page, nextLink: page.next && nextLink(ctx.resourceUrl, ctx.rawQuery, page.next) },
      ctx.target.contextPath,
      options.select,
      (stored, json) => ({ ...json, ...expanded.get(stored.id) }),
      headers,
    );
  }

  @odata.GET('$count')
  async count(@odata.context ctx: ODataRequest, @odata.result scope: SetScope): Promise<Reply> {
    const options = parseQueryOptions(ctx.rawQuery, this.type, true);
    const n = await this.db.read((m) => this.table.count(m, scope, options));
    if (n === 0) await scope.requireContainer?.();
    return { status: 200, text: String(n), contentType: 'text/plain' };
  }

  @odata.GET
  async getByKey(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string): Promise<Reply> {
    const options = parseQueryOptions(ctx.rawQuery, this.type, false);
    const found = await this.db.read(async (m) => {
      const stored = await this.table.lookup(m, scope, key);
      return stored && { stored, expanded: await this.expand(m, ctx, scope, [stored], options) };
    });
    if (!found) throw this.notFound(key);
    return notModified(ctx, found.stored) ?? entityReply(ctx, this.type, found.stored, ctx.target.contextPath, 200, found.expanded.get(key) ?? {}, options.select);
  }

  @odata.POST
  async create(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.body body: unknown): Promise<Reply> {
    const { stored, extra } = await this.insertOne(ctx, scope, body);
    return writeReply(ctx, this.type, stored, ctx.target.contextPath, 201, this.locationOf(ctx, stored.id), extra);
  }

  @odata.PATCH
  update(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string, @odata.body body: unknown): Promise<Reply> {
    return this.write(ctx, scope, key, body, false);
  }

  @odata.PUT
  replace(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string, @odata.body body: unknown): Promise<Reply> {
    return this.write(ctx, scope, key, body, true);
  }

  @odata.DELETE
  async remove(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string): Promise<Reply> {
    await this.db.write(async (m) => {
      await this.lockForRemove(m, scope, key);
      const current = await this.table.findOne(m, scope, key, true);
      if (!current) throw this.notFound(key);
      checkWritePreconditions(ctx, current);
      await this.beforeRemove(m, ctx, scope, current);
      await this.table.remove(m, scope, key);
    });
    return { status: 204 };
  }

  // ---- shared machinery ----

  private readonly ensured = new Set<string>();

  /** Creates a member with a well-known id (a tenant's singleton) unless it exists; creating it twice is harmless. */
  protected async ensureMember(scope: SetScope, id: string, record: EntityRecord): Promise<string> {
    if (this.ensured.has(id)) return id;
    await this.db.write((m) => this.table.insert(m, [this.table.newRow(scope, id, record)], true));
    // Remembered only once committed: an atomic batch group that rolls back takes the member with it.
    this.db.afterCommit(() => this.ensured.add(id));
    return id;
  }

  protected notFound(key: string): ODataError {
    return new ODataError('ResourceNotFound', `${this.type.name} '${key}' was not found.`);
  }

  protected locationOf(ctx: ODataRequest, id: string): string {
    return `${ctx.serviceRoot}/${ctx.target.contextPath}('${id.replace(/'/g, "''")}')`;
  }

  /** Validates a create body and builds the new entity (before any database access). */
  protected prepareNew(ctx: ODataRequest, scope: SetScope, body: unknown): NewEntity {
    const { values, navigations } = parseEntity(this.type, body, this.inlineNavigations());
    return this.newEntity(ctx, scope, values, navigations);
  }

  /**
   * Inserts one new entity (POST, and a collection PATCH without id), its inline children in the same transaction,
   * and reads it back: the database owns derived state (an upload's status follows its devices by trigger).
   */
  protected async insertOne(ctx: ODataRequest, scope: SetScope, body: unknown): Promise<{ stored: Stored; extra: Record<string, unknown> }> {
    const entity = this.prepareNew(ctx, scope, body);
    const id = newId();
    const result = await this.db.write(async (m) => {
      await scope.requireContainer?.(m);
      await this.table.insert(m, [this.table.newRow(scope, id, entity.record)]);
      const extra = entity.children ? await entity.children(m, id) : {};
      const stored = await this.table.findOne(m, scope, id);
      return { stored: stored!, extra };
    });
    this.db.afterCommit(() => this.created());
    return result;
  }

  /** PATCH (merge) or PUT (replace) of one member: only writable properties change. */
  private async write(ctx: ODataRequest, scope: SetScope, key: string, body: unknown, replace: boolean): Promise<Reply> {
    const { values } = parseEntity(this.type, body);
    const writable = this.writable();
    const allowed: Record<string, Value> = {};
    for (const name of writable) if (values[name] !== undefined) allowed[name] = values[name];
    if (!replace && writable.length > 0 && ctx.headers['if-match'] === undefined && ctx.headers['if-none-match'] === undefined) {
      // Without preconditions a merge needs nothing read first: one statement sets, bumps and returns the row.
      const merged = await this.db.writeOne((m) => this.table.merge(m, scope, key, allowed));
      if (!merged) throw this.notFound(key);
      return writeReply(ctx, this.type, merged, ctx.target.contextPath, 200);
    }
    const stored = await this.change(ctx, scope, key, (record) =>
      writable.length === 0 ? undefined : replace ? replaceWith(this.type, record, allowed, writable) : mergeInto(this.type, record, allowed),
    );
    return writeReply(ctx, this.type, stored, ctx.target.contextPath, 200);
  }

  /**
   * Changes one member: `next` maps the current record to the new one (undefined: nothing to write, the current
   * entity is the answer). First optimistically: read, compute outside any lock, write by compare-and-set on the
   * version read. If another write got in between, a request with If-Match fails (412); one without takes the row's
   * lock and applies `next` to the fresh row (last writer wins, never a refusal). 404 when the member is not there
   * (412 with If-Match).
   */
  protected async change(ctx: ODataRequest, scope: SetScope, key: string, next: (record: EntityRecord) => EntityRecord | undefined): Promise<Stored> {
    const missing = () => {
      if (ctx.headers['if-match'] !== undefined) checkWritePreconditions(ctx, undefined);
      return this.notFound(key);
    };
    const current = await this.db.read((m) => this.table.findOne(m, scope, key));
    if (!current) throw missing();
    checkWritePreconditions(ctx, current);
    const record = next(current.record);
    if (record === undefined) return current;
    const version = await this.db.writeOne((m) => this.table.update(m, scope, key, current.version, record, current.record));
    if (version !== undefined) return { id: key, version, record };
    if (ctx.headers['if-match'] !== undefined) throw new ODataError('PreconditionFailed', 'The entity was changed by another request; read it again.');

    return this.db.write(async (m) => {
      const fresh = await this.table.findOne(m, scope, key, true);
      if (!fresh) throw missing();
      const merged = next(fresh.record) ?? fresh.record;
      const written = await this.table.update(m, scope, key, fresh.version, merged, fresh.record);
      if (written === undefined) throw new Error(`${this.type.name} ${key} changed while its row was locked`);
      return { id: key, version: written, record: merged };
    });
  }

  /**
   * PATCH on the collection (OData 4.01 §11.4.12): a single entity is an upsert (with `id`: merge into that member,
   * else insert); a delta payload applies all its entries — upserts and `@removed` deletions — in one transaction.
   */
  protected async patchCollection(ctx: ODataRequest, scope: SetScope, body: unknown): Promise<Reply> {
    const b = body as Record<string, unknown>;
    const context = b && typeof b === 'object' ? (b['@context'] ?? b['@odata.context']) : undefined;
    if (typeof context === 'string' && context.endsWith('$delta')) return this.applyDelta(ctx, scope, b);
    if (b && typeof b === 'object' && Array.isArray(b.value)) {
      throw badRequest("A collection PATCH with a 'value' array must be a delta payload: add \"@context\": \"#$delta\".", '@context');
    }
    const id = b && typeof b === 'object' ? b.id : undefined;
    if (id !== undefined && typeof id !== 'string') throw badRequest("The property 'id' expects a string.", 'id');
    if (id === undefined) {
      const { stored } = await this.insertOne(ctx, scope, body);
      return writeReply(ctx, this.type, stored, ctx.target.contextPath, 200);
    }
    await scope.requireContainer?.();
    return this.write(ctx, scope, id, body, false);
  }

  private async applyDelta(ctx: ODataRequest, scope: SetScope, body: Record<string, unknown>): Promise<Reply> {
    const entries = body.value;
    if (!Array.isArray(entries)) throw badRequest("A delta payload needs a 'value' array.", 'value');
    for (const key of Object.keys(body)) {
      if (!key.startsWith('@') && key !== 'value') throw badRequest(`Unexpected member '${key}' in a delta payload.`, key);
    }
    // Validate every entry before touching the database: one bad entry and nothing changes.
    const parsed = entries.map((entry, i) => {
      const target = `value[${i}]`;
      if (!entry || typeof entry !== 'object' || Array.isArray(entry)) throw badRequest(`${target} must be an object.`, target);
      const e = entry as Record<string, unknown>;
      const id = e.id ?? idFromReference(e['@id'] ?? e['@odata.id']);
      if (id !== undefined && typeof id !== 'string') throw badRequest(`${target}/id expects a string.`, `${target}/id`);
      if (id?.includes('\u0000')) throw badRequest(`${target}/id contains the NUL character (U+0000).`, `${target}/id`);
      if ('@removed' in e || '@odata.removed' in e) {
        if (id === undefined) throw badRequest(`${target}: a removed entry needs its id.`, target);
        return { kind: 'remove' as const, id };
      }
      const rest = { ...e };
      delete rest['@id'];
      delete rest['@odata.id'];
      if (id === undefined) return { kind: 'insert' as const, entity: withTarget(target, () => this.prepareNew(ctx, scope, rest)) };
      const { values } = withTarget(target, () => parseEntity(this.type, rest));
      delete values.id;
      return { kind: 'merge' as const, id, values };
    });
    const notMember = (i: number, id: string) => notFound(`value[${i}]: ${this.type.name} '${id}' is not a member of this collection.`);

    const results = await this.db.write(async (m) => {
      await this.table.lockAll(m, scope, parsed.flatMap((p) => (p.kind === 'insert' ? [] : [p.id])));
      await scope.requireContainer?.(m);
      const out: ({ removed: string } | Stored)[] = [];
      for (const [i, entry] of parsed.entries()) {
        if (entry.kind === 'remove') {
          if (!(await this.table.remove(m, scope, entry.id))) throw notMember(i, entry.id);
          out.push({ removed: entry.id });
        } else if (entry.kind === 'insert') {
          out.push(...(await this.table.insertNew(m, scope, [entry.entity.record])));
        } else {
          const current = await this.table.findOne(m, scope, entry.id, true);
          if (!current) throw notMember(i, entry.id);
          const next = mergeInto(this.type, current.record, entry.values);
          const version = await this.table.update(m, scope, entry.id, current.version, next, current.record);
          if (version === undefined) throw new ODataError('PreconditionFailed', `value[${i}] was changed by another request.`);
          out.push({ id: entry.id, version, record: next });
        }
      }
      return out;
    });
    if (parsed.some((p) => p.kind === 'insert')) this.db.afterCommit(() => this.created());

    if (ctx.prefer.returnPreference === 'minimal') return { status: 204, headers: { 'Preference-Applied': 'return=minimal' } };
    const value = results.map((r) => ('removed' in r ? { '@removed': { reason: 'deleted' }, id: r.removed } : entityJson(ctx, this.type, r)));
    return { status: 200, json: withContext(ctx, `${contextUrl(ctx, ctx.target.contextPath)}/$delta`, { value }) };
  }
}

/** The key of an entity reference (`@id`): `…('key')`, `…/key` or the key itself. */
function idFromReference(ref: unknown): string | undefined {
  if (typeof ref !== 'string') return undefined;
  const m = /\('([^']+)'\)$/.exec(ref) ?? /\/([^/()]+)$/.exec(ref);
  return m ? m[1] : ref;
}
