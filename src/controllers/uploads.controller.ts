// The controller base class alone: the package index also loads swagger-ui and the typed server (~66 MB RSS).
import { ODataController } from '@odata/server/lib/controller';
import { EntityManager } from 'typeorm';
import { EntityRecord } from '../odata/binding';
import { EntitySet, Scope, Stored } from '../odata/entity-set';
import { badRequest, ODataError } from '../odata/errors';
import { nameBasedId, newId } from '../odata/ids';
import { entityType, enumType, TYPE } from '../odata/model';
import { nextLink } from '../odata/paging';
import { parseEntity } from '../odata/payload';
import { parseQueryOptions, QueryOptions } from '../odata/query';
import { ODataRequest, Reply } from '../odata/request';
import {
  checkWritePreconditions,
  collectionReply,
  entityJson,
  entityReply,
  notFoundError,
  notModified,
  withContext,
  writeReply,
} from '../odata/respond';
import { newDevice, withTarget } from './device-identities.controller';

const uploadType = () => entityType(TYPE.upload);
const deviceType = () => entityType(TYPE.device);
const uploadStatus = (name: string) => enumType(TYPE.uploadStatus).members.get(name)!;
const importStatus = (name: string) => enumType(TYPE.importStatus).members.get(name)!;

export const UPLOADS_PATH = 'deviceManagement/importedWindowsAutopilotDeviceIdentityUploads';
export const DEFAULT_UPLOAD_PATH = 'importedWindowsAutopilotDeviceIdentityUpload';

/** The tenant's default upload (the seed's singleton) has a GUID derived from the tenant id. */
export const defaultUploadId = (tenantId: string) => nameBasedId(`importedWindowsAutopilotDeviceIdentityUpload:${tenantId}`);

/** Whole seconds: Edm.DateTimeOffset without Precision carries no fraction. */
const nowSeconds = () => Math.floor(Date.now() / 1000) * 1000;

const q = (identifier: string) => `"${identifier}"`;

/**
 * importedWindowsAutopilotDeviceIdentityUploads (S1) and the tenant's default upload (S2). What is special here:
 * server-set `createdDateTimeUtc` and `status` (which follows the devices), deep insert of `deviceIdentities`,
 * `$expand=deviceIdentities`, and the `autopilotDeviceStream` function.
 */
export class UploadsController extends ODataController {
  private readonly ensuredDefaults = new Set<string>();
  /** Whether the database keeps upload status itself (the SQLite triggers of migration UploadStatusTriggers). */
  readonly maintainedByTriggers: boolean;

  constructor(
    private readonly uploads: EntitySet,
    private readonly devices: EntitySet,
    private readonly pageSize: (req: ODataRequest) => number,
  ) {
    super();
    this.maintainedByTriggers = uploads.db.dialect.name === 'sqlite';
  }

  private scope(tenantId: string): Scope {
    return { columns: { tenantId } };
  }

  private newRow(tenantId: string, id: string, deviceCount: number) {
    const record: EntityRecord = {
      createdDateTimeUtc: nowSeconds(),
      status: deviceCount > 0 ? uploadStatus('pending') : uploadStatus('noUpload'),
    };
    return { stored: { id, version: 1, record } as Stored, row: { id, tenantId, version: 1, ...this.uploads.binding.toColumns(record) } };
  }

  /** The default upload exists from the first access on (SPEC S2); creating it twice is harmless. */
  async ensureDefault(tenantId: string): Promise<string> {
    const id = defaultUploadId(tenantId);
    if (this.ensuredDefaults.has(tenantId)) return id;
    await this.uploads.db.write((m) => this.uploads.insert(m, [this.newRow(tenantId, id, 0).row], true));
    this.ensuredDefaults.add(tenantId);
    return id;
  }

  /** 404 unless the upload exists in the tenant. */
  async requireUpload(tenantId: string, id: string): Promise<void> {
    const found = await this.uploads.db.read((m) => this.uploads.exists(m, this.scope(tenantId), id));
    if (!found) throw notFoundError('importedWindowsAutopilotDeviceIdentityUpload', id);
  }

  /** Upload status follows its devices (SPEC §6): noUpload, pending while any is pending, then error or complete. */
  readonly refreshStatus = async (manager: EntityManager, tenantId: string, uploadId: string): Promise<void> => {
    // On SQLite the migration's triggers keep the status in the device statement itself.
    if (this.maintainedByTriggers) return;
    // Concurrent writers to one upload (other instances on PostgreSQL) take turns here, so the last to commit
    // counts every committed device: the status never lags behind the devices.
    if (this.uploads.db.dialect.name === 'postgres') {
      await manager.query(`SELECT 1 FROM ${q(this.uploads.binding.table)} WHERE ${q('id')} = $1 FOR UPDATE`, [uploadId]);
    }
    // One statement: derive the status from the devices and write it only if it changed (bumping the ETag).
    const p = (i: number) => (this.uploads.db.dialect.name === 'postgres' ? `$${i}` : `?${i}`);
    const importIn = (...names: string[]) => names.map((n) => importStatus(n)).join(', ');
    const exists = (condition: string) =>
      `EXISTS (SELECT 1 FROM ${q(this.devices.binding.table)} d WHERE d.${q('tenantId')} = ${p(1)} AND d.${q('uploadId')} = ${p(2)}${condition})`;
    const status = `CASE WHEN NOT ${exists('')} THEN ${uploadStatus('noUpload')}
      WHEN ${exists(` AND d.${q('stateDeviceImportStatus')} IN (${importIn('unknown', 'pending', 'partial')})`)} THEN ${uploadStatus('pending')}
      WHEN ${exists(` AND d.${q('stateDeviceImportStatus')} = ${importIn('error')}`)} THEN ${uploadStatus('error')}
      ELSE ${uploadStatus('complete')} END`;
    await this.uploads.db.run(
      manager,
      `UPDATE ${q(this.uploads.binding.table)} SET ${q('status')} = s.v, ${q('version')} = ${q('version')} + 1
       FROM (SELECT ${status} AS v) s
       WHERE ${q('id')} = ${p(2)} AND ${q('tenantId')} = ${p(1)} AND ${q('status')} <> s.v`,
      [tenantId, uploadId],
    );
  };

  private async expand(req: ODataRequest, manager: EntityManager, tenantId: string, items: Stored[], options: QueryOptions) {
    const nested = options.expand?.get('deviceIdentities');
    const expanded = new Map<string, Record<string, unknown>>();
    if (!nested) return expanded;
    for (const upload of items) {
      const page = await this.devices.page(manager, { columns: { tenantId, uploadId: upload.id } }, nested, undefined);
      const extra: Record<string, unknown> = {};
      if (page.count !== undefined) extra['deviceIdentities@odata.count'] = req.format.ieee754 ? String(page.count) : page.count;
      extra.deviceIdentities = page.items.map((d) => entityJson(req, deviceType(), d, nested.select));
      expanded.set(upload.id, extra);
    }
    return expanded;
  }

  async list(req: ODataRequest): Promise<Reply> {
    const options = parseQueryOptions(req.rawQuery, uploadType(), true);
    const pageSize = this.pageSize(req);
    await this.ensureDefault(req.tenantId);
    const { page, expanded } = await this.uploads.db.read(async (m) => {
      const page = await this.uploads.page(m, this.scope(req.tenantId), options, pageSize);
      return { page, expanded: await this.expand(req, m, req.tenantId, page.items, options) };
    });
    const headers = req.prefer.maxPageSize ? { 'Preference-Applied': `odata.maxpagesize=${pageSize}` } : undefined;
    return collectionReply(
      req,
      uploadType(),
      { ...page, nextLink: page.next && nextLink(req.resourceUrl, req.rawQuery, page.next) },
      UPLOADS_PATH,
      options.select,
      (stored, json) => ({ ...json, ...expanded.get(stored.id) }),
      headers,
    );
  }

  async count(req: ODataRequest): Promise<Reply> {
    const options = parseQueryOptions(req.rawQuery, uploadType(), true);
    await this.ensureDefault(req.tenantId);
    const n = await this.uploads.db.read((m) => this.uploads.count(m, this.scope(req.tenantId), options));
    return { status: 200, text: String(n), contentType: 'text/plain' };
  }

  async getByKey(req: ODataRequest, key: string, path: string): Promise<Reply> {
    const options = parseQueryOptions(req.rawQuery, uploadType(), false);
    const result = await this.uploads.db.read(async (m) => {
      const stored = await this.uploads.findOne(m, this.scope(req.tenantId), key);
      return stored && { stored, expanded: await this.expand(req, m, req.tenantId, [stored], options) };
    });
    if (!result) throw notFoundError('importedWindowsAutopilotDeviceIdentityUpload', key);
    return (
      notModified(req, result.stored) ??
      entityReply(req, uploadType(), result.stored, path, 200, result.expanded.get(key) ?? {}, options.select)
    );
  }

  /** POST: a new upload, optionally with its devices inline (deep insert). */
  async create(req: ODataRequest): Promise<Reply> {
    const { navigations } = parseEntity(uploadType(), req.body, new Set(['deviceIdentities']));
    const deviceBodies = navigations.deviceIdentities ?? [];
    const deviceValues = deviceBodies.map((item, i) => withTarget(`deviceIdentities[${i}]`, () => parseEntity(deviceType(), item).values));
    const id = newId();
    const { stored, row } = this.newRow(req.tenantId, id, deviceValues.length);
    const createdDevices = await this.uploads.db.write(async (m) => {
      await this.uploads.insert(m, [row]);
      const created: Stored[] = [];
      const rows = deviceValues.map((values) => {
        const device = newDevice(this.devices, req.tenantId, id, values);
        created.push(device.stored);
        return device.row;
      });
      if (rows.length) await this.devices.insert(m, rows);
      return created;
    });
    const extra = deviceBodies.length ? { deviceIdentities: createdDevices.map((d) => entityJson(req, deviceType(), d)) } : {};
    return writeReply(req, uploadType(), stored, UPLOADS_PATH, 201, `${req.serviceRoot}/${UPLOADS_PATH}('${id}')`, extra);
  }

  /** PATCH and PUT: every property of an upload is server-set, so a valid body changes nothing but is checked in full. */
  async update(req: ODataRequest, key: string, path: string): Promise<Reply> {
    parseEntity(uploadType(), req.body);
    const stored = await this.uploads.db.write(async (m) => {
      const current = await this.uploads.findOne(m, this.scope(req.tenantId), key, true);
      if (!current) {
        if (req.headers['if-match'] !== undefined) checkWritePreconditions(req, undefined);
        throw notFoundError('importedWindowsAutopilotDeviceIdentityUpload', key);
      }
      checkWritePreconditions(req, current);
      return current;
    });
    return writeReply(req, uploadType(), stored, path, 200);
  }

  async remove(req: ODataRequest, key: string): Promise<Reply> {
    if (key === defaultUploadId(req.tenantId)) {
      throw new ODataError('MethodNotAllowed', "The tenant's default upload (importedWindowsAutopilotDeviceIdentityUpload) cannot be deleted.").withHeader(
        'Allow',
        'GET, PATCH, PUT, HEAD',
      );
    }
    await this.uploads.db.write(async (m) => {
      const current = await this.uploads.findOne(m, this.scope(req.tenantId), key, true);
      if (!current) throw notFoundError('importedWindowsAutopilotDeviceIdentityUpload', key);
      checkWritePreconditions(req, current);
      await this.devices.removeAll(m, { columns: { tenantId: req.tenantId, uploadId: key } });
      await this.uploads.remove(m, this.scope(req.tenantId), key);
    });
    return { status: 204 };
  }

  /** autopilotDeviceStream(): the upload's devices as the standard Autopilot CSV. */
  async autopilotDeviceStream(req: ODataRequest, key: string): Promise<Reply> {
    const options = parseQueryOptions(req.rawQuery, uploadType(), false);
    if (options.select || options.expand) throw badRequest('$select and $expand do not apply to an Edm.String result.');
    const page = await this.uploads.db.read(async (m) => {
      if (!(await this.uploads.exists(m, this.scope(req.tenantId), key))) return undefined;
      return this.devices.page(m, { columns: { tenantId: req.tenantId, uploadId: key } }, {}, undefined);
    });
    if (!page) throw notFoundError('importedWindowsAutopilotDeviceIdentityUpload', key);
    const lines = ['Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User'];
    for (const { record } of page.items) {
      const hash = record.hardwareIdentifier ? (record.hardwareIdentifier as Buffer).toString('base64') : '';
      lines.push([record.serialNumber, record.productKey, hash, record.groupTag, record.assignedUserPrincipalName].map(csvField).join(','));
    }
    return { status: 200, json: withContext(req, `${req.serviceRoot}/$metadata#Edm.String`, { value: `${lines.join('\r\n')}\r\n` }) };
  }
}

function csvField(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
