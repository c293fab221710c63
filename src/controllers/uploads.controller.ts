import * as Edm from '@odata/server/lib/edm';
import * as odata from '@odata/server/lib/odata';
import { EntityManager } from 'typeorm';
import { devicesToCsv } from '../autopilot/autopilot-csv';
import { newImportedDevice } from '../autopilot/imported-device';
import { ScopedTable, Stored } from '../db/scoped-table';
import { Value } from '../odata/binding';
import { EntitySetController, NewEntity, SetScope } from '../odata/entity-set.controller';
import { badRequest, ODataError } from '../odata/errors';
import { nameBasedId } from '../odata/ids';
import { parseEntity, withTarget } from '../odata/payload';
import { parseQueryOptions, QueryOptions } from '../odata/query';
import { ODataRequest, Reply } from '../odata/request';
import { entityJson, withContext } from '../odata/respond';

/** The tenant's default upload (the seed's singleton) has a GUID derived from the tenant id. */
export const defaultUploadId = (tenantId: string) => nameBasedId(`importedWindowsAutopilotDeviceIdentityUpload:${tenantId}`);

/** Whole seconds: Edm.DateTimeOffset without Precision carries no fraction. */
const nowSeconds = () => Math.floor(Date.now() / 1000) * 1000;

/**
 * importedWindowsAutopilotDeviceIdentityUploads and the tenant's default upload. What is special here: every
 * property is server-set (`status` follows the devices, by trigger), deep insert and `$expand` of
 * `deviceIdentities`, the default upload, and the `autopilotDeviceStream` function.
 */
export class UploadsController extends EntitySetController {
  constructor(
    uploads: ScopedTable,
    private readonly devices: ScopedTable,
  ) {
    super(uploads);
  }

  /** The scope of a tenant's uploads; the default upload exists from the first access on (SPEC S2). */
  async scopeOf(tenantId: string): Promise<SetScope> {
    await this.ensureDefault(tenantId);
    return { columns: { tenantId } };
  }

  /** Creates the tenant's default upload if it is not there yet; creating it twice is harmless. */
  ensureDefault(tenantId: string): Promise<string> {
    return this.ensureMember({ columns: { tenantId } }, defaultUploadId(tenantId), this.newEntity().record);
  }

  /**
   * 404 unless the upload exists in the tenant. Given a transaction, the upload's row is locked until it ends, so a
   * DELETE of the upload cannot commit in between and leave the transaction's new devices behind.
   */
  async requireUpload(tenantId: string, id: string, manager?: EntityManager): Promise<void> {
    const scope = { columns: { tenantId } };
    const found = manager ? await this.table.exists(manager, scope, id, true) : await this.db.read((m) => this.table.exists(m, scope, id));
    if (!found) throw this.notFound(id);
  }

  protected override writable(): string[] {
    return [];
  }

  protected override inlineNavigations() {
    return new Set(['deviceIdentities']);
  }

  protected override newEntity(ctx?: ODataRequest, scope?: SetScope, _values?: Record<string, Value>, navigations: Record<string, unknown[]> = {}): NewEntity {
    // The status column starts at noUpload (0); the database moves it as devices arrive.
    const record = { createdDateTimeUtc: nowSeconds(), status: 0 };
    const bodies = navigations.deviceIdentities;
    if (!bodies || !ctx || !scope) return { record };
    const devices = this.devices;
    const deviceType = devices.binding.type;
    const values = bodies.map((item, i) => withTarget(`deviceIdentities[${i}]`, () => parseEntity(deviceType, item).values));
    return {
      record,
      children: async (m, id) => {
        const created = await devices.insertNew(m, { columns: { ...scope.columns, uploadId: id } }, values.map(newImportedDevice));
        return { deviceIdentities: created.map((d) => entityJson(ctx, deviceType, d)) };
      },
    };
  }

  protected override async expand(m: EntityManager, ctx: ODataRequest, scope: SetScope, items: Stored[], options: QueryOptions) {
    const nested = options.expand?.get('deviceIdentities');
    const expanded = new Map<string, Record<string, unknown>>();
    if (!nested) return expanded;
    for (const upload of items) {
      const page = await this.devices.page(m, { columns: { ...scope.columns, uploadId: upload.id } }, nested, undefined);
      const extra: Record<string, unknown> = {};
      if (page.count !== undefined) extra['deviceIdentities@odata.count'] = ctx.format.ieee754 ? String(page.count) : page.count;
      extra.deviceIdentities = page.items.map((d) => entityJson(ctx, this.devices.binding.type, d, nested.select));
      expanded.set(upload.id, extra);
    }
    return expanded;
  }

  /** Devices before their upload: the lock order of every writer (ScopedTable.lockAll), so a DELETE never deadlocks with a device's write. */
  protected override async lockForRemove(m: EntityManager, scope: SetScope, key: string): Promise<void> {
    await this.devices.lockScope(m, { columns: { ...scope.columns, uploadId: key } });
  }

  protected override async beforeRemove(m: EntityManager, ctx: ODataRequest, scope: SetScope, current: Stored): Promise<void> {
    if (current.id === defaultUploadId(ctx.tenantId)) {
      throw new ODataError('MethodNotAllowed', "The tenant's default upload (importedWindowsAutopilotDeviceIdentityUpload) cannot be deleted.").withHeader(
        'Allow',
        'GET, PATCH, PUT, HEAD',
      );
    }
    await this.devices.removeAll(m, { columns: { ...scope.columns, uploadId: current.id } });
  }

  /** autopilotDeviceStream(): the upload's devices as the standard Autopilot CSV. */
  @Edm.Function(Edm.String)
  async autopilotDeviceStream(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string): Promise<Reply> {
    const options = parseQueryOptions(ctx.rawQuery, this.type, false);
    if (options.select || options.expand) throw badRequest('$select and $expand do not apply to an Edm.String result.');
    const page = await this.db.read(async (m) => {
      if (!(await this.table.exists(m, scope, key))) return undefined;
      return this.devices.page(m, { columns: { ...scope.columns, uploadId: key } }, {}, undefined);
    });
    if (!page) throw this.notFound(key);
    const csv = devicesToCsv(page.items.map((d) => d.record));
    return { status: 200, json: withContext(ctx, `${ctx.serviceRoot}/$metadata#Edm.String`, { value: csv }) };
  }
}
