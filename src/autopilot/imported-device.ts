import { EntityRecord, Value } from '../odata/binding';
import { entityType, enumType } from '../odata/model';
import { TYPE } from './graph-types';

/**
 * A new imported identity's record (SPEC §6): the body's properties, and the import state the service owns —
 * `unknown` (what Graph reports while it processes an import) until the import worker decides. A `state` the client
 * sent on create is ignored (the scripts send `pending`).
 */
export function newImportedDevice(values: Record<string, Value>): EntityRecord {
  const type = entityType(TYPE.device);
  const record: EntityRecord = {};
  for (const name of type.properties.keys()) if (!type.key.includes(name)) record[name] = values[name] ?? null;
  record.state = {
    deviceImportStatus: enumType(TYPE.importStatus).members.get('unknown')!,
    deviceRegistrationId: null,
    deviceErrorCode: 0,
    deviceErrorName: null,
  };
  return record;
}
