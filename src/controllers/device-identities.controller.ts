import * as Edm from '@odata/server/lib/edm';
import * as odata from '@odata/server/lib/odata';
import { devicesFromCsv } from '../autopilot/autopilot-csv';
import { newImportedDevice } from '../autopilot/imported-device';
import { Value } from '../odata/binding';
import { EntitySetController, NewEntity, SetScope } from '../odata/entity-set.controller';
import { badRequest } from '../odata/errors';
import { accepts } from '../odata/handlers';
import { parseEntity, withTarget } from '../odata/payload';
import { ODataRequest, Reply } from '../odata/request';
import { entityJson, withContext } from '../odata/respond';

/**
 * importedWindowsAutopilotDeviceIdentity collections: the devices of an upload and
 * deviceManagement/importedWindowsAutopilotDeviceIdentities. What is special here: the service-owned import
 * `state` on create, the collection PATCH (upsert / delta), and the `import` action (JSON or the Autopilot CSV).
 */
export class DeviceIdentitiesController extends EntitySetController {
  /** Called when new devices were committed (the import worker's wake-up). */
  onCreated: () => void = () => undefined;

  protected override newEntity(_ctx: ODataRequest, _scope: SetScope, values: Record<string, Value>): NewEntity {
    return { record: newImportedDevice(values) };
  }

  protected override created(): void {
    this.onCreated();
  }

  @odata.PATCH
  upsert(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.body body: unknown): Promise<Reply> {
    return this.patchCollection(ctx, scope, body);
  }

  /**
   * The bound action `import`: creates every device of the body, each with the initial import state. The body is
   * the action's JSON parameters, or the standard Autopilot CSV (text/csv) that autopilotDeviceStream produces.
   */
  @Edm.Action
  @accepts('text/csv')
  async import(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.body body: unknown): Promise<Reply> {
    const parameters = body === undefined && ctx.rawBody ? { importedWindowsAutopilotDeviceIdentities: devicesFromCsv(ctx.rawBody) } : body;
    if (!parameters || typeof parameters !== 'object' || Array.isArray(parameters)) throw badRequest('The import action expects a JSON object.');
    const p = parameters as Record<string, unknown>;
    for (const key of Object.keys(p)) {
      if (key !== 'importedWindowsAutopilotDeviceIdentities' && !key.startsWith('@')) throw badRequest(`The import action has no parameter '${key}'.`, key);
    }
    const items = p.importedWindowsAutopilotDeviceIdentities;
    if (!Array.isArray(items)) {
      throw badRequest("The parameter 'importedWindowsAutopilotDeviceIdentities' must be an array.", 'importedWindowsAutopilotDeviceIdentities');
    }
    const records = items.map((item, i) => withTarget(`importedWindowsAutopilotDeviceIdentities[${i}]`, () => newImportedDevice(parseEntity(this.type, item).values)));
    const created = await this.db.write(async (m) => {
      await scope.requireContainer?.(m);
      return this.table.insertNew(m, scope, records);
    });
    if (created.length) this.db.afterCommit(() => this.created());
    const value = created.map((stored) => entityJson(ctx, this.type, stored));
    return { status: 200, json: withContext(ctx, `${ctx.serviceRoot}/$metadata#Collection(${this.type.qualifiedName})`, { value }) };
  }
}
