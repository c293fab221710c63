import { GRAPH_MIN_DATE_MS } from '../../entities/column-types';
import { EntityRecord, Value } from '../odata/binding';
import { entityType, enumType, NAMESPACE } from '../odata/model';

export const REGISTERED_DEVICE = `${NAMESPACE}.windowsAutopilotDeviceIdentity`;

/** Values a fresh registration has where Graph's CSDL allows no null (what Graph shows for a device never enrolled). */
const INITIAL: Record<string, { enum: string; member: string }> = {
  enrollmentState: { enum: 'enrollmentState', member: 'notContacted' },
  deploymentProfileAssignmentStatus: { enum: 'windowsAutopilotProfileAssignmentStatus', member: 'notAssigned' },
  deploymentProfileAssignmentDetailedStatus: { enum: 'windowsAutopilotProfileAssignmentDetailedStatus', member: 'none' },
  remediationState: { enum: 'windowsAutopilotDeviceRemediationState', member: 'unknown' },
  userlessEnrollmentStatus: { enum: 'windowsAutopilotUserlessEnrollmentStatus', member: 'unknown' },
};

/**
 * A registered Autopilot device's record: the given values, and Graph's defaults for everything else — null where
 * nullable, the members above for non-nullable enums, 0001-01-01T00:00:00Z for dates never set.
 */
export function newRegisteredDevice(values: Record<string, Value>): EntityRecord {
  const type = entityType(REGISTERED_DEVICE);
  const record: EntityRecord = {};
  for (const [name, property] of type.properties) {
    if (type.key.includes(name)) continue;
    if (values[name] !== undefined) record[name] = values[name];
    else if (property.nullable) record[name] = null;
    else if (INITIAL[name]) record[name] = enumType(`${NAMESPACE}.${INITIAL[name].enum}`).members.get(INITIAL[name].member)!;
    else if (property.type.kind === 'enum') record[name] = Math.min(...property.type.members.values());
    else if (property.type.kind === 'primitive' && property.type.name === 'Edm.DateTimeOffset') record[name] = GRAPH_MIN_DATE_MS;
    else if (property.type.kind === 'primitive' && property.type.name === 'Edm.Int32') record[name] = 0;
    else record[name] = '';
  }
  return record;
}

/** The enum value of a member, by the enum's short name. */
export const member = (enumName: string, name: string) => enumType(`${NAMESPACE}.${enumName}`).members.get(name)!;
