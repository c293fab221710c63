// The controller base class alone: the package index also loads swagger-ui and the typed server (~66 MB RSS).
import { ODataController } from '@odata/server/lib/controller';
import { parse as parseCsv } from 'csv-parse/sync';
import { EntityManager } from 'typeorm';
import { EntityRecord, Value } from '../odata/binding';
import { EntitySet, Scope, Stored } from '../odata/entity-set';
import { badRequest, notFound, ODataError } from '../odata/errors';
import { entityType, enumType, TYPE } from '../odata/model';
import { nextLink } from '../odata/paging';
import { mergeInto, parseEntity, replaceWith } from '../odata/payload';
import { parseQueryOptions } from '../odata/query';
import { ODataRequest, Reply } from '../odata/request';
import {
  checkWritePreconditions,
  collectionReply,
  contextUrl,
  entityJson,
  entityReply,
  notFoundError,
  notModified,
  withContext,
  writeReply,
} from '../odata/respond';
import { newId } from '../odata/ids';

/** Where a device collection lives: in an upload (`uploadId`) or in deviceManagement (the live collection). */
export interface DeviceCollection {
  tenantId: string;
  uploadId: string | null;
  /** Context path, e.g. `deviceManagement/importedWindowsAutopilotDeviceIdentities`. */
  path: string;
  /** Absolute URL of the collection, for Location headers and nextLinks. */
  url: string;
  /** Set for reads whose container was not checked yet: call it when nothing is found (404 for a missing upload). */
  requireContainer?: () => Promise<void>;
}

const deviceType = () => entityType(TYPE.device);
/** Compare-and-set rounds before an update without If-Match gives up with 503. */
const MAX_UPDATE_ATTEMPTS = 5;
const PENDING = () => enumType(TYPE.importStatus).members.get('pending')!;

/** Properties a client may write; `id` is server-generated and ignored. */
const updatable = () => [...deviceType().properties.keys()].filter((p) => p !== 'id');

/** Called after devices of an upload change, to keep the upload's status in step. */
export type DevicesChanged = (manager: EntityManager, tenantId: string, uploadId: string) => Promise<void>;

/**
 * importedWindowsAutopilotDeviceIdentity collections: the devices of an upload (S1 and the seed's S2 document surface)
 * and deviceManagement/importedWindowsAutopilotDeviceIdentities. What is special here: server-set `state` on create,
 * the collection PATCH (single-entity upsert and 4.01 delta payloads) and the `import` action.
 */
export class DeviceIdentitiesController extends ODataController {
  constructor(
    private readonly devices: EntitySet,
    private readonly pageSize: (req: ODataRequest) => number,
    private readonly devicesChanged: DevicesChanged,
    /** The database derives upload status in the device statement itself (SQLite triggers). */
    private readonly statusByDatabase = false,
  ) {
    super();
  }

  private scope(collection: DeviceCollection): Scope {
    return { columns: { tenantId: collection.tenantId, uploadId: collection.uploadId } };
  }

  private entityPath(collection: DeviceCollection) {
    return collection.path;
  }

  private locationOf(collection: DeviceCollection, id: string) {
    return `${collection.url}('${id}')`;
  }

  /** A new device: the body's properties, a server GUID and the initial import state (SPEC §6). */
  private newRow(collection: DeviceCollection, values: Record<string, Value>) {
    return newDevice(this.devices, collection.tenantId, collection.uploadId, values);
  }

  private async changed(manager: EntityManager, collection: DeviceCollection) {
    if (collection.uploadId !== null) await this.devicesChanged(manager, collection.tenantId, collection.uploadId);
  }

  async list(req: ODataRequest, collection: DeviceCollection): Promise<Reply> {
    const options = parseQueryOptions(req.rawQuery, deviceType(), true);
    const pageSize = this.pageSize(req);
    const page = await this.devices.db.read((m) => this.devices.page(m, this.scope(collection), options, pageSize));
    if (page.items.length === 0) await collection.requireContainer?.();
    const headers = req.prefer.maxPageSize ? { 'Preference-Applied': `odata.maxpagesize=${pageSize}` } : undefined;
    return collectionReply(
      req,
      deviceType(),
      { ...page, nextLink: page.next && nextLink(req.resourceUrl, req.rawQuery, page.next) },
      this.entityPath(collection),
      options.select,
      undefined,
      headers,
    );
  }

  async count(req: ODataRequest, collection: DeviceCollection): Promise<Reply> {
    const options = parseQueryOptions(req.rawQuery, deviceType(), true);
    const n = await this.devices.db.read((m) => this.devices.count(m, this.scope(collection), options));
    if (n === 0) await collection.requireContainer?.();
    return { status: 200, text: String(n), contentType: 'text/plain' };
  }

  async getByKey(req: ODataRequest, collection: DeviceCollection, key: string): Promise<Reply> {
    const options = parseQueryOptions(req.rawQuery, deviceType(), false);
    const stored = await this.devices.db.read((m) => this.devices.findOne(m, this.scope(collection), key));
    if (!stored) throw notFoundError('importedWindowsAutopilotDeviceIdentity', key);
    return notModified(req, stored) ?? entityReply(req, deviceType(), stored, this.entityPath(collection), 200, {}, options.select);
  }

  /** Inserts one new device (POST, and a collection PATCH without id). */
  private insertOne(collection: DeviceCollection, body: unknown): Promise<Stored> {
    const { values } = parseEntity(deviceType(), body);
    return this.devices.db.write(async (m) => {
      const device = this.newRow(collection, values);
      await this.devices.insert(m, [device.row]);
      await this.changed(m, collection);
      return device.stored;
    });
  }

  async create(req: ODataRequest, collection: DeviceCollection): Promise<Reply> {
    const created = await this.insertOne(collection, req.body);
    return writeReply(req, deviceType(), created, this.entityPath(collection), 201, this.locationOf(collection, created.id));
  }

  /**
   * PATCH (merge) or PUT (replace) of one member, optimistically: read, merge outside any lock, then write with a
   * compare-and-set on the version read. Only a write that changes the import status (and so the upload's status)
   * needs a transaction; a lost race is 412 under If-Match, else the merge is redone on the fresh entity.
   */
  async update(req: ODataRequest, collection: DeviceCollection, key: string, replace = false): Promise<Reply> {
    const { values } = parseEntity(deviceType(), req.body);
    delete values.id;
    const scope = this.scope(collection);
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const current = await this.devices.db.read((m) => this.devices.findOne(m, scope, key));
      if (!current) {
        if (req.headers['if-match'] !== undefined) checkWritePreconditions(req, undefined);
        throw notFoundError('importedWindowsAutopilotDeviceIdentity', key);
      }
      checkWritePreconditions(req, current);
      const next = replace ? replaceWith(deviceType(), current.record, values, updatable()) : mergeInto(deviceType(), current.record, values);
      const write = (m: EntityManager) => this.devices.update(m, scope, key, current.version, next, current.record);
      const version =
        this.statusByDatabase || importStatusOf(current.record) === importStatusOf(next)
          ? await this.devices.db.writeOne(write)
          : await this.devices.db.write(async (m) => {
              const written = await write(m);
              if (written !== undefined) await this.changed(m, collection);
              return written;
            });
      if (version !== undefined) return writeReply(req, deviceType(), { id: key, version, record: next }, this.entityPath(collection), 200);
      if (req.headers['if-match'] !== undefined) {
        throw new ODataError('PreconditionFailed', 'The entity was changed by another request; read it again.');
      }
    }
    throw new ODataError('ServiceUnavailable', 'The entity is being changed by many requests at once; retry.').withHeader('Retry-After', '1');
  }

  async remove(req: ODataRequest, collection: DeviceCollection, key: string): Promise<Reply> {
    await this.devices.db.write(async (m) => {
      const current = await this.devices.findOne(m, this.scope(collection), key, true);
      if (!current) throw notFoundError('importedWindowsAutopilotDeviceIdentity', key);
      checkWritePreconditions(req, current);
      await this.devices.remove(m, this.scope(collection), key);
      await this.changed(m, collection);
    });
    return { status: 204 };
  }

  /**
   * PATCH on the collection (SPEC §3): a single entity is an upsert (with `id`: merge into that member, else insert);
   * a 4.01 delta payload applies all its entries — upserts and `@removed` deletions — in one transaction.
   */
  async upsert(req: ODataRequest, collection: DeviceCollection): Promise<Reply> {
    const body = req.body as Record<string, unknown>;
    const context = body && typeof body === 'object' ? (body['@context'] ?? body['@odata.context']) : undefined;
    if (typeof context === 'string' && context.endsWith('$delta')) return this.applyDelta(req, collection, body);
    if (body && typeof body === 'object' && Array.isArray((body as Record<string, unknown>).value)) {
      throw badRequest("A collection PATCH with a 'value' array must be a delta payload: add \"@context\": \"#$delta\".", '@context');
    }

    const id = body && typeof body === 'object' ? body.id : undefined;
    if (id !== undefined && typeof id !== 'string') throw badRequest("The property 'id' expects a string.", 'id');
    if (id === undefined) {
      const created = await this.insertOne(collection, body);
      return writeReply(req, deviceType(), created, this.entityPath(collection), 200);
    }
    return this.update(req, collection, id);
  }

  private async applyDelta(req: ODataRequest, collection: DeviceCollection, body: Record<string, unknown>): Promise<Reply> {
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
      if ('@removed' in e || '@odata.removed' in e) {
        if (id === undefined) throw badRequest(`${target}: a removed entry needs its id.`, target);
        return { kind: 'remove' as const, id };
      }
      const rest = { ...e };
      delete rest['@id'];
      delete rest['@odata.id'];
      const { values } = withTarget(target, () => parseEntity(deviceType(), rest));
      delete values.id;
      return { kind: 'upsert' as const, id, values };
    });

    const results = await this.devices.db.write(async (m) => {
      const out: ({ removed: string } | Stored)[] = [];
      for (const [i, entry] of parsed.entries()) {
        if (entry.kind === 'remove') {
          if (!(await this.devices.remove(m, this.scope(collection), entry.id))) {
            throw notFound(`value[${i}]: importedWindowsAutopilotDeviceIdentity '${entry.id}' is not a member of this collection.`);
          }
          out.push({ removed: entry.id });
        } else if (entry.id === undefined) {
          const { id, record, row } = this.newRow(collection, entry.values);
          await this.devices.insert(m, [row]);
          out.push({ id, version: 1, record });
        } else {
          const current = await this.devices.findOne(m, this.scope(collection), entry.id, true);
          if (!current) throw notFound(`value[${i}]: importedWindowsAutopilotDeviceIdentity '${entry.id}' is not a member of this collection.`);
          const next = mergeInto(deviceType(), current.record, entry.values);
          const version = await this.devices.update(m, this.scope(collection), entry.id, current.version, next, current.record);
          if (version === undefined) throw new ODataError('PreconditionFailed', `value[${i}] was changed by another request.`);
          out.push({ id: entry.id, version, record: next });
        }
      }
      await this.changed(m, collection);
      return out;
    });

    if (req.prefer.returnPreference === 'minimal') return { status: 204, headers: { 'Preference-Applied': 'return=minimal' } };
    const value = results.map((r) =>
      'removed' in r ? { '@removed': { reason: 'deleted' }, id: r.removed } : entityJson(req, deviceType(), r),
    );
    return { status: 200, json: withContext(req, `${contextUrl(req, this.entityPath(collection))}/$delta`, { value }) };
  }

  /**
   * The bound action `import`: creates every device of the body, each with the initial import state. The body is
   * the action's JSON parameters, or the standard Autopilot CSV (text/csv) that autopilotDeviceStream produces.
   */
  async import(req: ODataRequest, collection: DeviceCollection): Promise<Reply> {
    const body = req.body === undefined && req.rawBody ? { importedWindowsAutopilotDeviceIdentities: devicesFromCsv(req.rawBody) } : req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The import action expects a JSON object.');
    const b = body as Record<string, unknown>;
    for (const key of Object.keys(b)) {
      if (key !== 'importedWindowsAutopilotDeviceIdentities' && !key.startsWith('@')) {
        throw badRequest(`The import action has no parameter '${key}'.`, key);
      }
    }
    const items = b.importedWindowsAutopilotDeviceIdentities;
    if (!Array.isArray(items)) {
      throw badRequest("The parameter 'importedWindowsAutopilotDeviceIdentities' must be an array.", 'importedWindowsAutopilotDeviceIdentities');
    }
    const parsed = items.map((item, i) => withTarget(`importedWindowsAutopilotDeviceIdentities[${i}]`, () => parseEntity(deviceType(), item).values));
    const created = await this.devices.db.write(async (m) => {
      const rows = parsed.map((values) => this.newRow(collection, values));
      if (rows.length) await this.devices.insert(m, rows.map((r) => r.row));
      await this.changed(m, collection);
      return rows.map((r) => ({ id: r.id, version: 1, record: r.record }));
    });
    const value = created.map((stored) => entityJson(req, deviceType(), stored));
    return {
      status: 200,
      json: withContext(req, `${req.serviceRoot}/$metadata#Collection(${TYPE.device})`, { value }),
    };
  }
}

/** The Autopilot CSV columns (as Get-WindowsAutopilotInfo writes them) and the properties they fill. */
const CSV_COLUMNS: Record<string, string> = {
  'device serial number': 'serialNumber',
  'windows product id': 'productKey',
  'hardware hash': 'hardwareIdentifier',
  'group tag': 'groupTag',
  'assigned user': 'assignedUserPrincipalName',
};

function devicesFromCsv(raw: Buffer): Record<string, unknown>[] {
  let rows: string[][];
  try {
    rows = parseCsv(raw, { bom: true, skip_empty_lines: true, trim: true, relax_column_count: false });
  } catch (err) {
    throw badRequest(`The CSV body cannot be read: ${(err as Error).message}`);
  }
  const [header, ...records] = rows;
  if (!header) throw badRequest('The CSV body is empty; expected a header line such as "Device Serial Number,Windows Product ID,Hardware Hash".');
  const properties = header.map((name) => {
    const property = CSV_COLUMNS[name.toLowerCase()];
    if (!property) throw badRequest(`Unknown CSV column '${name}'; known columns are ${Object.keys(CSV_COLUMNS).join(', ')} (any case).`, name);
    return property;
  });
  if (!properties.includes('serialNumber') || !properties.includes('hardwareIdentifier')) {
    throw badRequest("The CSV needs the columns 'Device Serial Number' and 'Hardware Hash'.");
  }
  return records.map((record) => {
    const device: Record<string, unknown> = {};
    properties.forEach((property, i) => {
      device[property] = record[i] === '' ? null : record[i];
    });
    return device;
  });
}

/** The device's import status, or null when it has no state: what the upload's status is derived from. */
const importStatusOf = (record: EntityRecord) => (record.state as { deviceImportStatus?: number } | null)?.deviceImportStatus ?? null;

function idFromReference(ref: unknown): string | undefined {
  if (typeof ref !== 'string') return undefined;
  const m = /\('([^']+)'\)$/.exec(ref) ?? /\/([^/()]+)$/.exec(ref);
  return m ? m[1] : ref;
}

/**
 * A new device row: the body's properties, a server GUID and the initial import state (SPEC §6: a client `state`
 * on create is ignored).
 */
export function newDevice(devices: EntitySet, tenantId: string, uploadId: string | null, values: Record<string, Value>) {
  const id = newId();
  const record: EntityRecord = {};
  for (const name of updatable()) record[name] = values[name] ?? null;
  record.state = { deviceImportStatus: PENDING(), deviceRegistrationId: null, deviceErrorCode: 0, deviceErrorName: null };
  const row = { id, tenantId, uploadId, version: 1, ...devices.binding.toColumns(record) };
  return { id, record, row, stored: { id, version: 1, record } as Stored };
}

/** Re-targets a validation error at an item of an array parameter. */
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
