import { AutopilotSettingsController } from './controllers/autopilot-settings.controller';
import { DeviceIdentitiesController } from './controllers/device-identities.controller';
import { DeviceManagementController } from './controllers/device-management.controller';
import { RegisteredDevicesController } from './controllers/registered-devices.controller';
import { UploadsController } from './controllers/uploads.controller';
import { Mount } from './odata/router';

export interface Controllers {
  deviceManagement: DeviceManagementController;
  uploads: UploadsController;
  devices: DeviceIdentitiesController;
  registered: RegisteredDevicesController;
  settings: AutopilotSettingsController;
}

/**
 * The mount table: which controller serves each navigation path of the CSDL, and the rows a request there
 * reaches (always the caller's tenant; the containing upload for contained devices). Paths, keys, `$count`,
 * operations and verbs are not listed here: the CSDL and the controllers' decorators declare them.
 */
export function mounts({ deviceManagement, uploads, devices, registered, settings }: Controllers): Mount[] {
  const tenant = (ctx: { tenantId: string }) => ({ columns: { tenantId: ctx.tenantId } });
  return [
    { path: 'deviceManagement', controller: deviceManagement, key: (ctx) => ctx.tenantId },
    {
      path: 'deviceManagement/importedWindowsAutopilotDeviceIdentityUploads',
      controller: uploads,
      scope: (ctx) => uploads.scopeOf(ctx.tenantId),
    },
    {
      path: 'deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/deviceIdentities',
      controller: devices,
      scope: (ctx, [uploadId]) => ({
        columns: { tenantId: ctx.tenantId, uploadId },
        requireContainer: (manager) => uploads.requireUpload(ctx.tenantId, uploadId, manager),
      }),
    },
    {
      path: 'deviceManagement/importedWindowsAutopilotDeviceIdentities',
      controller: devices,
      scope: (ctx) => ({ columns: { tenantId: ctx.tenantId, uploadId: null } }),
    },
    { path: 'deviceManagement/windowsAutopilotDeviceIdentities', controller: registered, scope: tenant },
    { path: 'deviceManagement/windowsAutopilotSettings', controller: settings, scope: tenant, key: (ctx) => settings.ensure(ctx.tenantId) },
    // The seed's document surface: the tenant's default upload as a singleton.
    {
      path: 'importedWindowsAutopilotDeviceIdentityUpload',
      controller: uploads,
      scope: tenant,
      key: (ctx) => uploads.ensureDefault(ctx.tenantId),
    },
    {
      path: 'importedWindowsAutopilotDeviceIdentityUpload/deviceIdentities',
      controller: devices,
      scope: async (ctx) => ({ columns: { tenantId: ctx.tenantId, uploadId: await uploads.ensureDefault(ctx.tenantId) } }),
    },
  ];
}
