import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ODataController } from '@odata/server/lib/controller';
import * as Edm from '@odata/server/lib/edm';
import * as odata from '@odata/server/lib/odata';
import { AutopilotSettingsController } from '../src/controllers/autopilot-settings.controller';
import { DeviceIdentitiesController } from '../src/controllers/device-identities.controller';
import { RegisteredDevicesController } from '../src/controllers/registered-devices.controller';
import { DeviceManagementController } from '../src/controllers/device-management.controller';
import { UploadsController } from '../src/controllers/uploads.controller';
import { compileHandlers, HandlerTable } from '../src/odata/handlers';
import { loadModel, METADATA_FILE, model } from '../src/odata/model';
import { Mount, Router } from '../src/odata/router';
import { ODataRequest, Reply } from '../src/odata/request';
import { mounts } from '../src/routes';

/**
 * How @odata/server is used: its decorators (odata.GET …, odata.key, odata.body, Edm.Action, Edm.Function) declare
 * every handler and are read back once at start through its metadata API; its per-request processor (~100x slower)
 * and the swagger UI its package index drags in stay unloaded.
 */
/** The service's controllers, without tables: enough to compile handlers and check them against the CSDL. */
const fakeControllers = () => ({
  deviceManagement: new DeviceManagementController(),
  uploads: Object.create(UploadsController.prototype) as UploadsController,
  devices: Object.create(DeviceIdentitiesController.prototype) as DeviceIdentitiesController,
  registered: Object.create(RegisteredDevicesController.prototype) as RegisteredDevicesController,
  settings: Object.create(AutopilotSettingsController.prototype) as AutopilotSettingsController,
});

const summary = (table: HandlerTable) => ({
  collection: [...table.collection.keys()].sort(),
  entity: [...table.entity.keys()].sort(),
  count: table.count !== undefined,
  operations: Object.fromEntries([...table.operations].map(([name, op]) => [name, `${op.collection ? 'collection ' : ''}${op.kind}`])),
});

describe('@odata/server decorators declare the handlers', () => {
  it.each([
    [UploadsController, { collection: ['GET', 'POST'], entity: ['DELETE', 'GET', 'PATCH', 'PUT'], count: true, operations: { autopilotdevicestream: 'function' } }],
    [DeviceIdentitiesController, { collection: ['GET', 'PATCH', 'POST'], entity: ['DELETE', 'GET', 'PATCH', 'PUT'], count: true, operations: { import: 'collection action' } }],
    [DeviceManagementController, { collection: [], entity: ['GET'], count: false, operations: {} }],
    [
      RegisteredDevicesController,
      {
        collection: ['GET', 'POST'],
        entity: ['DELETE', 'GET', 'PATCH', 'PUT'],
        count: true,
        operations: { updatedeviceproperties: 'action', assignusertodevice: 'action', unassignuserfromdevice: 'action', allownextenrollment: 'action' },
      },
    ],
    [AutopilotSettingsController, { collection: ['GET', 'POST'], entity: ['DELETE', 'GET', 'PATCH', 'PUT'], count: true, operations: { sync: 'action' } }],
  ])('%p', (controller, expected) => {
    expect(summary(compileHandlers(controller))).toEqual(expected);
  });

  // A controller of one GET and one DELETE, and the same without the DELETE decorator, mounted at the live collection.
  class WithDelete extends ODataController {
    @odata.GET
    async getByKey(@odata.context ctx: ODataRequest, @odata.key key: string): Promise<Reply> {
      return { status: 200, json: { id: key, path: ctx.target.contextPath } };
    }
    @odata.DELETE
    async remove(@odata.key key: string): Promise<Reply> {
      return { status: 204, headers: { key } };
    }
  }
  class WithoutDelete extends ODataController {
    @odata.GET
    async getByKey(@odata.context ctx: ODataRequest, @odata.key key: string): Promise<Reply> {
      return { status: 200, json: { id: key, path: ctx.target.contextPath } };
    }
    async remove(@odata.key key: string): Promise<Reply> {
      return { status: 204, headers: { key } };
    }
  }
  class Import extends ODataController {
    @Edm.Action
    async import(@odata.body body: unknown): Promise<Reply> {
      return { status: 200, json: body };
    }
  }
  const LIVE = 'deviceManagement/importedWindowsAutopilotDeviceIdentities';
  const routerWith = (controller: object) =>
    new Router(
      model(),
      mounts(fakeControllers()).map(
        (m): Mount => (m.path === LIVE ? { ...m, controller } : m),
      ),
    );

  it('a DELETE handler is served only while it carries @odata.DELETE; the others stay in Allow', () => {
    expect(() => routerWith(new WithDelete())).toThrow(/has no handler for the action 'import'/);
    class Served extends WithDelete {
      @Edm.Action
      async import(@odata.body body: unknown) {
        return { status: 200, json: body };
      }
    }
    class NotServed extends WithoutDelete {
      @Edm.Action
      async import(@odata.body body: unknown) {
        return { status: 200, json: body };
      }
    }
    const segments = ['deviceManagement', 'importedWindowsAutopilotDeviceIdentities', 'x'];
    expect([...routerWith(new Served()).resolve(segments)!.methods.keys()]).toEqual(['GET', 'DELETE']);
    expect([...routerWith(new NotServed()).resolve(segments)!.methods.keys()]).toEqual(['GET']);
  });

  it('passes context, key and body to the parameters their decorators name, in any order', async () => {
    class Served extends WithDelete {
      @Edm.Action
      async import(@odata.body body: unknown) {
        return { status: 200, json: body };
      }
    }
    const router = routerWith(new Served());
    const ctx = { target: { contextPath: LIVE }, body: { a: 1 } } as unknown as ODataRequest;
    const get = router.resolve(['deviceManagement', 'importedWindowsAutopilotDeviceIdentities', 'k1'])!;
    expect(await get.methods.get('GET')!.invoke(get.mount.controller, ctx, {}, 'k1')).toEqual({ status: 200, json: { id: 'k1', path: LIVE } });
    expect((await get.methods.get('DELETE')!.invoke(get.mount.controller, ctx, {}, 'k1')).headers).toEqual({ key: 'k1' });
    const action = router.resolve(['deviceManagement', 'importedWindowsAutopilotDeviceIdentities', 'microsoft.graph.import'])!;
    expect(await action.methods.get('POST')!.invoke(action.mount.controller, ctx, {}, undefined)).toEqual({ status: 200, json: { a: 1 } });
  });

  it('refuses to start when the CSDL declares an operation no controller handles', () => {
    const xml = readFileSync(METADATA_FILE, 'utf8').replace(
      '<EntityContainer',
      `<Action Name="wipe" IsBound="true"><Parameter Name="bindingParameter" Type="microsoft.graph.importedWindowsAutopilotDeviceIdentity" /></Action>
      <EntityContainer`,
    );
    const build = () =>
      new Router(loadModel(xml), mounts(fakeControllers()));
    expect(build).toThrow(/DeviceIdentitiesController has no handler for the action 'wipe' the CSDL binds to importedWindowsAutopilotDeviceIdentity/);
  });

  it('refuses to start when a controller handles an operation the CSDL does not declare', () => {
    class Extra extends WithDelete {
      @Edm.Action
      async import(@odata.body body: unknown) {
        return { status: 200, json: body };
      }
      @Edm.Action
      async wipe() {
        return { status: 204 };
      }
    }
    expect(() => routerWith(new Extra())).toThrow(/Extra\.wipe handles an operation the CSDL does not bind/);
    expect(() => routerWith(new Import())).not.toThrow();
  });

  it('refuses to start when a navigation path of the CSDL has no controller', () => {
    const partial = mounts(fakeControllers());
    expect(() => new Router(model(), partial.filter((m) => m.path !== LIVE))).toThrow(/the CSDL path 'deviceManagement\/importedWindowsAutopilotDeviceIdentities' has no controller mounted/);
  });
});

describe('@odata/server stays off the request path', () => {
  it('loads neither its processor nor swagger-ui when the service loads', () => {
    // A separate Node process, so jest's own module loading does not blur what the service requires.
    const script = `require('${join(__dirname, '..', 'src', 'server.ts').replace(/\\/g, '/')}');
      const loaded = Object.keys(require.cache);
      console.log(JSON.stringify({
        swagger: loaded.some((k) => k.includes('swagger-ui')),
        processor: loaded.some((k) => /@odata[\\\\/]server[\\\\/]lib[\\\\/]processor/.test(k)),
        decorators: loaded.some((k) => /@odata[\\\\/]server[\\\\/]lib[\\\\/]odata/.test(k)),
      }));`;
    const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ swagger: false, processor: false, decorators: true });
  });
});
