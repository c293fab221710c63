import { ODataController } from '@odata/server/lib/controller';
import * as odata from '@odata/server/lib/odata';
import { ODataRequest, Reply } from '../odata/request';
import { withContext } from '../odata/respond';

/** The `deviceManagement` singleton: one per tenant, its id the tenant's. Everything else hangs below it. */
export class DeviceManagementController extends ODataController {
  @odata.GET
  get(@odata.context ctx: ODataRequest, @odata.key key: string): Promise<Reply> {
    return Promise.resolve({
      status: 200,
      json: withContext(ctx, `${ctx.serviceRoot}/$metadata#${ctx.target.contextPath}`, { '@odata.type': '#microsoft.graph.deviceManagement', id: key }),
    });
  }
}
