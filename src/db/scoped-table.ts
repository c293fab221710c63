import { randomUUID } from 'node:crypto';
import { EntityManager, EntityTarget, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { Binding, EntityRecord, Row } from '../odata/binding';
import { decodeSkipToken, queryFingerprint, SkipToken } from '../odata/paging';
import { defaultsOf } from '../odata/payload';
import { applyFilter, applyFilterAndOrder, checkCountSegmentOptions, QueryOptions, queryLimitError } from '../odata/query';
import { Database } from './database';
import { quote as q } from './dialect';

/**
 * Generic reads and writes of one entity type's table, always inside a scope (tenant, containing upload). Fixed-shape
 * statements (by key, insert, update, delete) are positional SQL prepared once; reads shaped by query options are
 * built by TypeORM's QueryBuilder from the filter translator. Parameters are always bound. Rows are read raw (no ORM
 * hydration) and mapped through the binding, so only CSDL properties ever reach a response.
 */
export interface Scope {
  /** Column → required value (null = IS NULL), e.g. `{ tenantId: 't1', uploadId: null }`. */
  columns: Record<string, string | null>;
}

function scopeCondition(scope: Scope, alias: string): { where: string; params: Record<string, unknown> } {
  const parts: string[] = [];
  const params: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(scope.columns)) {
    const ref = `${alias}.${q(column)}`;
    if (value === null) parts.push(`${ref} IS NULL`);
    else {
      parts.push(`${ref} = :scope_${column}`);
      params[`scope_${column}`] = value;
    }
  }
  return { where: parts.join(' AND ') || '1=1', params };
}

export interface Stored {
  id: string;
  version: number;
  record: EntityRecord;
}

export interface Page {
  items: Stored[];
  count?: number;
  next?: SkipToken;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return a === b;
}

export const etagOf = (version: number) => `W/"${version}"`;

/** The most lookups by key one statement answers (ScopedTable.lookup). */
const LOOKUP_BATCH = 64;

/** A lookup by key waiting for its turn's statement. */
interface PendingLookup {
  scope: Scope;
  id: string;
  resolve: (stored: Stored | undefined) => void;
  reject: (err: unknown) => void;
}

export class ScopedTable {
  private readonly selectList: string[];
  /** The select list without an alias, for RETURNING. */
  private readonly returningList: string;

  constructor(
    readonly db: Database,
    readonly binding: Binding,
    readonly entity: EntityTarget<ObjectLiteral>,
  ) {
    const columns = ['id', 'version', ...binding.allColumns()];
    this.selectList = columns.map((c) => `t.${q(c)}`);
    this.returningList = columns.map(q).join(', ');
  }

  private base(manager: EntityManager, scope: Scope): SelectQueryBuilder<ObjectLiteral> {
    const { where, params } = scopeCondition(scope, 't');
    return manager.createQueryBuilder().from(this.entity, 't').where(where, params);
  }

  toStored(row: Row): Stored {
    return { id: String(row.id), version: Number(row.version), record: this.binding.fromRow(row) };
  }

  /** Runs a built query through Database.run: TypeORM builds the SQL, the statement is prepared once. */
  private async rowsOf(manager: EntityManager, qb: SelectQueryBuilder<ObjectLiteral>): Promise<Row[]> {
    const [sql, params] = qb.getQueryAndParameters();
    return (await this.db.run(manager, sql, params)).rows;
  }

  /** One member by key (the hottest read): a fixed statement, prepared once. */
  async findOne(manager: EntityManager, scope: Scope, id: string, forUpdate = false): Promise<Stored | undefined> {
    const params: unknown[] = [];
    const lock = forUpdate ? this.db.dialect.forUpdate : '';
    const sql = `SELECT ${this.selectList.join(', ')} FROM ${this.table} t WHERE ${this.scopeSql(scope, params, 't')} AND t.${q('id')} = ${this.placeholder(params.push(id))}${lock}`;
    const { rows } = await this.db.run(manager, sql, params);
    return rows[0] ? this.toStored(rows[0]) : undefined;
  }

  /** Lookups by key waiting for the next turn of the event loop, by the column names of their scope. */
  private readonly pending = new Map<string, PendingLookup[]>();

  /**
   * One member by key, for a read (GET by key): the lookups made in one turn of the event loop are answered together by
   * one statement, `WHERE id IN (…)` with each one's scope checked on its row, so concurrent GETs cost one round trip to
   * the database between them rather than one each (on SQLite, a hop to node-sqlite3's thread and back: most of what a
   * GET costs). Callers hold Database.read's lock while they wait, so no write comes between their lookups.
   */
  lookup(manager: EntityManager, scope: Scope, id: string): Promise<Stored | undefined> {
    if (manager !== this.db.dataSource.manager) return this.findOne(manager, scope, id);
    const shape = Object.keys(scope.columns).join(',');
    let waiting = this.pending.get(shape);
    if (!waiting) {
      waiting = [];
      this.pending.set(shape, waiting);
      setImmediate(() => {
        this.pending.delete(shape);
        for (let i = 0; i < waiting!.length; i += LOOKUP_BATCH) void this.lookupAll(manager, waiting!.slice(i, i + LOOKUP_BATCH));
      });
    }
    return new Promise((resolve, reject) => waiting.push({ scope, id, resolve, reject }));
  }

  private async lookupAll(manager: EntityManager, batch: PendingLookup[]): Promise<void> {
    try {
      const scopeColumns = Object.keys(batch[0].scope.columns);
      // The list padded to a power of two (repeating the last key), so a handful of statement texts serve every size.
      const size = 2 ** Math.ceil(Math.log2(batch.length));
      const keys = [...batch.map((b) => b.id), ...Array<string>(size - batch.length).fill(batch[batch.length - 1].id)];
      const scoped = scopeColumns.map((c, i) => `t.${q(c)} AS ${q(`scope${i}`)}`);
      const sql = `SELECT ${[...this.selectList, ...scoped].join(', ')} FROM ${this.table} t WHERE t.${q('id')} IN (${keys.map((_, i) => this.placeholder(i + 1)).join(', ')})`;
      const rows = new Map((await this.db.run(manager, sql, keys)).rows.map((row) => [String(row.id), row]));
      for (const { scope, id, resolve } of batch) {
        const row = rows.get(id);
        const inScope = row !== undefined && scopeColumns.every((c, i) => (row[`scope${i}`] ?? null) === scope.columns[c]);
        resolve(inScope ? this.toStored(row) : undefined);
      }
    } catch {
      // One request's key must not fail the others': each looks itself up alone, with its own answer or error.
      for (const { scope, id, resolve, reject } of batch) this.findOne(manager, scope, id).then(resolve, reject);
    }
  }

  /**
   * Locks the rows of these keys for the rest of the transaction, in key order (PostgreSQL; SQLite's write lock
   * already serialises). A transaction that changes several rows locks them all before its first write, so its lock
   * order is the same as any other writer's: device rows first, then (by trigger) their upload.
   */
  async lockAll(manager: EntityManager, scope: Scope, ids: string[]): Promise<void> {
    if (!this.db.dialect.forUpdate || ids.length === 0) return;
    const params: unknown[] = [];
    const where = this.scopeSql(scope, params, 't');
    const keys = [...new Set(ids)].sort().map((id) => this.placeholder(params.push(id)));
    const sql = `SELECT t.${q('id')} FROM ${this.table} t WHERE ${where} AND t.${q('id')} IN (${keys.join(', ')}) ORDER BY t.${q('id')}${this.db.dialect.forUpdate}`;
    await this.db.run(manager, sql, params);
  }

  /** Whether the member exists; with `forUpdate`, inside a transaction, it also stays so until the transaction ends. */
  async exists(manager: EntityManager, scope: Scope, id: string, forUpdate = false): Promise<boolean> {
    const params: unknown[] = [];
    const lock = forUpdate ? this.db.dialect.forUpdate : '';
    const sql = `SELECT 1 AS found FROM ${this.table} t WHERE ${this.scopeSql(scope, params, 't')} AND t.${q('id')} = ${this.placeholder(params.push(id))}${lock}`;
    return (await this.db.run(manager, sql, params)).rows.length > 0;
  }

  /** Locks every row of a scope for the rest of the transaction, in key order (PostgreSQL), as `lockAll`. */
  async lockScope(manager: EntityManager, scope: Scope): Promise<void> {
    if (!this.db.dialect.forUpdate) return;
    const params: unknown[] = [];
    const sql = `SELECT t.${q('id')} FROM ${this.table} t WHERE ${this.scopeSql(scope, params, 't')} ORDER BY t.${q('id')}${this.db.dialect.forUpdate}`;
    await this.db.run(manager, sql, params);
  }

  /**
   * The number of members matching $filter. For the `/$count` segment (`segment`, the default) any option that shapes a
   * collection is a 400: Part 1 §11.2.10 leaves such a request's result undefined, and no option is silently ignored.
   */
  async count(manager: EntityManager, scope: Scope, options: QueryOptions, segment = true): Promise<number> {
    if (segment) checkCountSegmentOptions(options);
    const qb = applyFilter(this.base(manager, scope).select('COUNT(*)', 'n'), options, this.binding, this.db.dialect);
    const [row] = await this.rowsOf(manager, qb).catch((err: unknown) => {
      throw queryLimitError(err);
    });
    return Number(row?.n ?? 0);
  }

  /** One page of the filtered, ordered collection; `pageSize` undefined = no server paging (used by $expand). */
  async page(manager: EntityManager, scope: Scope, options: QueryOptions, pageSize: number | undefined): Promise<Page> {
    const fingerprint = queryFingerprint(options.filter?.source, options.orderby?.source);
    const token = options.skiptoken !== undefined ? decodeSkipToken(options.skiptoken, fingerprint) : undefined;
    const returned = token?.n ?? 0;
    const remaining = options.top === undefined ? Infinity : Math.max(0, options.top - returned);
    const limit = Math.min(remaining, pageSize ?? Infinity);
    const keyset = !options.orderby;

    const count = options.count ? await this.count(manager, scope, options, false) : undefined;
    if (limit === 0) return { items: [], count };

    const qb = applyFilterAndOrder(this.base(manager, scope).select(this.selectList), options, this.binding, this.db.dialect);
    let offset = 0;
    if (token?.k !== undefined) qb.andWhere(`t.${q('id')} > :after`, { after: token.k });
    else if (token?.o !== undefined) offset = token.o;
    else offset = options.skip ?? 0;
    // Read one row more than the page to know whether a next page exists.
    const fetch = Number.isFinite(limit) ? limit + 1 : undefined;
    if (fetch !== undefined) qb.limit(fetch);
    if (offset > 0) {
      qb.offset(offset);
      if (fetch === undefined) qb.limit(this.db.dialect.noLimit as number);
    }
    const rows = await this.rowsOf(manager, qb).catch((err: unknown) => {
      throw queryLimitError(err);
    });
    const items = rows.slice(0, Number.isFinite(limit) ? limit : undefined).map((row) => this.toStored(row));
    const more = pageSize !== undefined && rows.length > limit && remaining > limit;
    let next: SkipToken | undefined;
    if (more && items.length > 0) {
      next = keyset
        ? { k: items[items.length - 1].id, n: returned + items.length, q: fingerprint }
        : { o: offset + items.length, n: returned + items.length, q: fingerprint };
    }
    return { items, count, next };
  }

  private placeholder(i: number): string {
    return this.db.dialect.placeholder(i);
  }

  get table(): string {
    return q(this.binding.table);
  }

  /** The row of a new entity in `scope`: key, version 1, the scope's columns and the record's columns. */
  newRow(scope: Scope, id: string, record: EntityRecord): Record<string, unknown> {
    return { id, version: 1, ...scope.columns, ...this.binding.toColumns(record) };
  }

  /** Inserts new entities into `scope`, each with a server GUID; returns them as stored. */
  async insertNew(manager: EntityManager, scope: Scope, records: EntityRecord[]): Promise<Stored[]> {
    const stored = records.map((record) => ({ id: randomUUID(), version: 1, record }));
    await this.insert(manager, stored.map((s) => this.newRow(scope, s.id, s.record)));
    return stored;
  }

  /**
   * Inserts rows keyed by column name, in statements as large as the engine's bound-parameter limit allows. A value
   * that every row of a statement shares (the tenant, the upload, a default) is bound once and named in each row:
   * binding is most of what a bulk insert costs the event loop (node-sqlite3 copies every parameter).
   */
  async insert(manager: EntityManager, rows: Record<string, unknown>[], ignoreExisting = false): Promise<void> {
    if (rows.length === 0) return;
    const columns = Object.keys(rows[0]);
    const value = (row: Record<string, unknown>, column: string) => row[column] ?? null;
    const shared = (chunk: Record<string, unknown>[], column: string) => {
      const first = value(chunk[0], column);
      return chunk.length > 1 && !Buffer.isBuffer(first) && chunk.every((row) => value(row, column) === first);
    };
    // As few statements as the engine's parameter limit allows: an upload of 500 devices is one statement.
    const chunkSize = Math.max(1, Math.floor(this.db.dialect.maxParameters / columns.length));
    for (let i = 0; i < rows.length; i += chunkSize) {
      const chunk = rows.slice(i, i + chunkSize);
      const params: unknown[] = [];
      const once = new Map(columns.filter((c) => shared(chunk, c)).map((c) => [c, this.placeholder(params.push(value(chunk[0], c)))]));
      const tuples = chunk.map((row) => `(${columns.map((c) => once.get(c) ?? this.placeholder(params.push(value(row, c)))).join(', ')})`);
      await this.db.run(manager, `INSERT INTO ${this.table} (${columns.map(q).join(', ')}) VALUES ${tuples.join(', ')}${ignoreExisting ? ' ON CONFLICT DO NOTHING' : ''}`, params);
    }
  }

  /** The scope as a WHERE condition with positional parameters (pushed onto `params`); always valid SQL. */
  private scopeSql(scope: Scope, params: unknown[], alias?: string): string {
    const ref = (column: string) => (alias ? `${alias}.${q(column)}` : q(column));
    const parts = Object.entries(scope.columns).map(([column, value]) =>
      value === null ? `${ref(column)} IS NULL` : `${ref(column)} = ${this.placeholder(params.push(value))}`,
    );
    return parts.join(' AND ') || '1=1';
  }

  /**
   * Writes a record if the row still has `version` (compare-and-set); returns the new version, or undefined if the
   * row changed meanwhile. Given the record as read, only the columns that differ are written, so the database
   * touches only the indexes of what changed.
   */
  async update(
    manager: EntityManager,
    scope: Scope,
    id: string,
    version: number,
    record: EntityRecord,
    previous?: EntityRecord,
  ): Promise<number | undefined> {
    const params: unknown[] = [];
    const columns = this.binding.toColumns(record);
    const before = previous ? this.binding.toColumns(previous) : undefined;
    const changed = Object.entries(columns).filter(([column, value]) => !before || !sameValue(before[column], value));
    const sets = [...changed, ['version', version + 1] as [string, unknown]].map(
      ([column, value]) => `${q(column)} = ${this.placeholder(params.push(value))}`,
    );
    const where = `${q('id')} = ${this.placeholder(params.push(id))} AND ${q('version')} = ${this.placeholder(params.push(version))} AND ${this.scopeSql(scope, params)}`;
    const { affected } = await this.db.run(manager, `UPDATE ${this.table} SET ${sets.join(', ')} WHERE ${where}`, params);
    return affected === 1 ? version + 1 : undefined;
  }

  /**
   * PATCH (merge) in one statement: sets the columns of the given properties, bumps the version and returns the
   * member as stored, or undefined when no member has this key in scope. A complex value merges member by member
   * into the stored one, or, where the stored one is null, into the complex type's defaults (as `mergeInto` does).
   * The SET expressions all read the row as it was, so the statement is atomic by itself.
   */
  async merge(manager: EntityManager, scope: Scope, id: string, patch: EntityRecord): Promise<Stored | undefined> {
    const params: unknown[] = [];
    const value = (v: unknown) => this.placeholder(params.push(v));
    const sets: string[] = [];
    for (const [name, given] of Object.entries(patch)) {
      const property = this.binding.type.properties.get(name)!;
      if (property.type.kind !== 'complex' || given === null) {
        for (const [column, v] of Object.entries(this.binding.toColumns(patch, [name]))) sets.push(`${q(column)} = ${value(v)}`);
        continue;
      }
      const members = given as Record<string, unknown>;
      const defaults = defaultsOf(property.type);
      const isNull = `${q(this.binding.complexNullColumn.get(name)!)} IS NULL`;
      for (const member of property.type.properties.keys()) {
        const column = q(this.binding.columns.get(`${name}/${member}`)!.column);
        if (members[member] !== undefined) sets.push(`${column} = ${value(members[member])}`);
        else if ((defaults[member] ?? null) !== null) sets.push(`${column} = CASE WHEN ${isNull} THEN ${value(defaults[member])} ELSE ${column} END`);
      }
    }
    sets.push(`${q('version')} = ${q('version')} + 1`);
    const where = `${q('id')} = ${value(id)} AND ${this.scopeSql(scope, params)}`;
    const { rows } = await this.db.run(manager, `UPDATE ${this.table} SET ${sets.join(', ')} WHERE ${where} RETURNING ${this.returningList}`, params);
    return rows[0] ? this.toStored(rows[0]) : undefined;
  }

  async remove(manager: EntityManager, scope: Scope, id: string): Promise<boolean> {
    const params: unknown[] = [];
    const where = `${q('id')} = ${this.placeholder(params.push(id))} AND ${this.scopeSql(scope, params)}`;
    return (await this.db.run(manager, `DELETE FROM ${this.table} WHERE ${where}`, params)).affected > 0;
  }

  /** Deletes every row of a scope (the devices of an upload). */
  async removeAll(manager: EntityManager, scope: Scope): Promise<number> {
    const params: unknown[] = [];
    return (await this.db.run(manager, `DELETE FROM ${this.table} WHERE ${this.scopeSql(scope, params)}`, params)).affected;
  }
}
