import { NAMESPACE } from '../odata/model';

/** The qualified names of the Graph types this service's own code refers to by name. */
export const TYPE = {
  upload: `${NAMESPACE}.importedWindowsAutopilotDeviceIdentityUpload`,
  device: `${NAMESPACE}.importedWindowsAutopilotDeviceIdentity`,
  state: `${NAMESPACE}.importedWindowsAutopilotDeviceIdentityState`,
  importStatus: `${NAMESPACE}.importedWindowsAutopilotDeviceIdentityImportStatus`,
  uploadStatus: `${NAMESPACE}.importedWindowsAutopilotDeviceIdentityUploadStatus`,
  deviceManagement: `${NAMESPACE}.deviceManagement`,
} as const;
