import { randomUUID } from 'node:crypto';
import { GRAPH_MIN_DATE_MS } from '../../entities/column-types';
import { EntityRecord, Value } from '../odata/binding';
import { enumType, NAMESPACE } from '../odata/model';

/** microsoft.graph.windowsAutopilotDeviceIdentity: the registered Autopilot device an import creates. */
export const REGISTERED_DEVICE = `${NAMESPACE}.windowsAutopilotDeviceIdentity`;

/** The value of an enum member, by the enum's short name. */
export function member(enumName: string, name: string): number {
  const value = enumType(`${NAMESPACE}.${enumName}`).members.get(name);
  if (value === undefined) throw new Error(`${enumName} has no member ${name}`);
  return value;
}

/**
 * A registered device as Graph returns one that has never contacted Intune, with `values` over it: empty strings
 * for text it has no value for, the empty GUID for `managedDeviceId` until the device enrolls, 0001-01-01T00:00:00Z
 * for dates never set, `notContacted` / `notAssigned` / `none` / `unknown` for the states, and a new Entra device id.
 */
export function registeredDeviceRecord(values: Record<string, Value>): EntityRecord {
  const azureAdDeviceId = randomUUID();
  return {
    addressableUserName: '',
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
    groupTag: '',
    lastContactedDateTime: GRAPH_MIN_DATE_MS,
    managedDeviceId: '00000000-0000-0000-0000-000000000000',
    manufacturer: '',
    model: '',
    productKey: '',
    purchaseOrderIdentifier: '',
    remediationState: member('windowsAutopilotDeviceRemediationState', 'unknown'),
    remediationStateLastModifiedDateTime: GRAPH_MIN_DATE_MS,
    resourceName: '',
    serialNumber: '',
    skuNumber: '',
    systemFamily: '',
    userlessEnrollmentStatus: member('windowsAutopilotUserlessEnrollmentStatus', 'unknown'),
    userPrincipalName: '',
    ...values,
  };
}

/** The imported device's values a registration copies. */
export interface ImportedValues {
  serialNumber: string | null;
  groupTag: string | null;
  productKey: string | null;
  orderIdentifier: string | null;
  assignedUserPrincipalName: string | null;
}

/**
 * The registration Intune makes of a completed import: serial, group tag and product key as imported, the order
 * identifier as purchaseOrderIdentifier, the assigned user as userPrincipalName and addressableUserName.
 */
export function registrationOf(from: ImportedValues): { id: string; record: EntityRecord } {
  const user = from.assignedUserPrincipalName ?? '';
  return {
    id: randomUUID(),
    record: registeredDeviceRecord({
      serialNumber: from.serialNumber ?? '',
      groupTag: from.groupTag ?? '',
      productKey: from.productKey ?? '',
      purchaseOrderIdentifier: from.orderIdentifier ?? '',
      userPrincipalName: user,
      addressableUserName: user,
    }),
  };
}
