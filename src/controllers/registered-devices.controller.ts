import * as Edm from '@odata/server/lib/edm';
import * as odata from '@odata/server/lib/odata';
import { member, registeredDeviceRecord } from '../autopilot/registered-device';
import { Value } from '../odata/binding';
import { EntitySetController, NewEntity, SetScope } from '../odata/entity-set.controller';
import { model } from '../odata/model';
import { parseActionParameters } from '../odata/payload';
import { ODataRequest, Reply } from '../odata/request';

/** The action's parameters, as validated values (names as the CSDL spells them). */
const parametersOf = (name: string, body: unknown) =>
  parseActionParameters(model().operations.find((op) => op.name === name && op.bindingType.name === 'windowsAutopilotDeviceIdentity')!, body);

/**
 * deviceManagement/windowsAutopilotDeviceIdentities: the registered Autopilot devices (what an import creates).
 * What is special here: Graph's defaults on create, and the four bound actions, each answering 204.
 */
export class RegisteredDevicesController extends EntitySetController {
  protected override newEntity(_ctx: ODataRequest, _scope: SetScope, values: Record<string, Value>): NewEntity {
    const given = Object.fromEntries(Object.entries(values).filter(([name]) => name !== 'id'));
    return { record: registeredDeviceRecord(given) };
  }

  /** Sets the properties named by the parameters (userPrincipalName, addressableUserName, groupTag, displayName, …). */
  @Edm.Action
  async updateDeviceProperties(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string, @odata.body body: unknown): Promise<Reply> {
    const values = parametersOf('updateDeviceProperties', body);
    await this.change(ctx, scope, key, (record) => ({ ...record, ...values }));
    return { status: 204 };
  }

  @Edm.Action
  async assignUserToDevice(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string, @odata.body body: unknown): Promise<Reply> {
    const values = parametersOf('assignUserToDevice', body);
    await this.change(ctx, scope, key, (record) => ({ ...record, ...values }));
    return { status: 204 };
  }

  @Edm.Action
  async unassignUserFromDevice(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string): Promise<Reply> {
    parametersOf('unassignUserFromDevice', ctx.body);
    await this.change(ctx, scope, key, (record) => ({ ...record, userPrincipalName: null, addressableUserName: null }));
    return { status: 204 };
  }

  /** Unblocks the next (userless) Autopilot enrollment. */
  @Edm.Action
  async allowNextEnrollment(@odata.context ctx: ODataRequest, @odata.result scope: SetScope, @odata.key key: string): Promise<Reply> {
    parametersOf('allowNextEnrollment', ctx.body);
    await this.change(ctx, scope, key, (record) => ({ ...record, userlessEnrollmentStatus: member('windowsAutopilotUserlessEnrollmentStatus', 'allowed') }));
    return { status: 204 };
  }
}
