import { randomUUID } from 'node:crypto';
import { GRAPH_MIN_DATE_MS } from '../../entities/column-types';
import { EntityRecord } from '../odata/binding';
import { enumType, NAMESPACE } from '../odata/model';

/** microsoft.graph.windowsAutopilotDeviceIdentity: the registered Autopilot device an import creates. */
export const REGISTERED_DEVICE_TYPE = `${NAMESPACE}.windowsAutopilotDeviceIdentity`;

/** The imported device's values a registration copies (SPEC §4, issue 11). */
export interface ImportedValues {
  serialNumber: string | null;
  groupTag: string | null;
  productKey: string | null;
  orderIdentifier: string | null;
  assignedUserPrincipalName: string | null;
}

const member = (enumName: string, name: string): number => {
  const value = enumType(`${NAMESPACE}.${enumName}`).members.get(name);
  if (value === undefined) throw new Error(`${enumName} has no member ${name}`);
  return value;
};

/**
 * The registered device Intune creates for a completed import, as Graph returns a device that has never contacted
 * Intune: what the import carried, Graph's defaults for the rest. Graph answers empty strings, not null, for text it
 * has no value for; `managedDeviceId` is the empty GUID until the device enrolls; DateTimeOffsets never set read
 * 0001-01-01T00:00:00Z (epoch ms here). Enum values come from the CSDL.
 */
export function newRegisteredDevice(from: ImportedValues): { id: string; record: EntityRecord } {
  const user = from.assignedUserPrincipalName ?? '';
  const azureAdDeviceId = randomUUID();
  return {
    id: randomUUID(),
    record: {
      addressableUserName: user,
      azureActiveDirectoryDeviceId: azureAdDeviceId,
      azureAdDeviceId,
      deploymentProfileAssignedDateTime: GRAPH_MIN_DATE_MS,
      deploymentProfileAssignmentDetailedStatus: member('windowsAutopilotProfileAssignmentDetailedStatus', 'none'),
      deploymentProfileAssignmentStatus: member('windowsAutopilotProfileAssignmentStatus', 'notAssigned'),
      deviceAccountPassword: '',
      deviceAccountUpn: '',
      deviceFriendlyName: '',
      displayName: '',
      enrollmentState: member('enrollmentState', 'notContacted'),
      groupTag: from.groupTag ?? '',
      lastContactedDateTime: GRAPH_MIN_DATE_MS,
      managedDeviceId: '00000000-0000-0000-0000-000000000000',
      manufacturer: '',
      model: '',
      productKey: from.productKey ?? '',
      purchaseOrderIdentifier: from.orderIdentifier ?? '',
      remediationState: member('windowsAutopilotDeviceRemediationState', 'unknown'),
      remediationStateLastModifiedDateTime: GRAPH_MIN_DATE_MS,
      resourceName: '',
      serialNumber: from.serialNumber ?? '',
      skuNumber: '',
      systemFamily: '',
      userlessEnrollmentStatus: member('windowsAutopilotUserlessEnrollmentStatus', 'unknown'),
      userPrincipalName: user,
    },
  };
}
