import { enumType } from '../odata/model';
import { TYPE } from '../autopilot/graph-types';

/**
 * The numbers of the upload status rule (SPEC §6), taken from the CSDL model, the one place that defines them:
 * noUpload without devices; pending while any device is unknown, pending or partial; then error if any device
 * failed, else complete.
 */
export interface UploadStatusValues {
  noUpload: number;
  pending: number;
  complete: number;
  error: number;
  /** Device import statuses that keep their upload pending. */
  unfinished: number[];
  /** The device import status that makes its upload `error`. */
  failed: number;
}

function member(type: string, name: string): number {
  const value = enumType(type).members.get(name);
  if (value === undefined) throw new Error(`${type} has no member ${name}`);
  return value;
}

export function uploadStatusValues(): UploadStatusValues {
  const upload = (name: string) => member(TYPE.uploadStatus, name);
  const device = (name: string) => member(TYPE.importStatus, name);
  return {
    noUpload: upload('noUpload'),
    pending: upload('pending'),
    complete: upload('complete'),
    error: upload('error'),
    unfinished: ['unknown', 'pending', 'partial'].map(device),
    failed: device('error'),
  };
}

/**
 * The rule as one SQL expression (common to both engines): the status of the upload whose devices, rows `d` of the
 * device table, satisfy `devicesOf` (for example `d."tenantId" = u."tenantId" AND d."uploadId" = u."id"`). A device
 * with no import status counts as neither unfinished nor failed, as the TypeScript rule has always done.
 */
export function uploadStatusCase(deviceTable: string, devicesOf: string): string {
  const v = uploadStatusValues();
  const exists = (condition: string) => `EXISTS (SELECT 1 FROM ${deviceTable} d WHERE ${devicesOf}${condition})`;
  return `CASE WHEN NOT ${exists('')} THEN ${v.noUpload}
    WHEN ${exists(` AND d."stateDeviceImportStatus" IN (${v.unfinished.join(', ')})`)} THEN ${v.pending}
    WHEN ${exists(` AND d."stateDeviceImportStatus" = ${v.failed}`)} THEN ${v.error}
    ELSE ${v.complete} END`;
}

/**
 * An upload's status once devices are added to it, from its status before (kept by the rule, so telling whether any
 * device was unfinished or failed) and whether any added device is unfinished / failed: no device needs reading.
 * `unfinished` and `failed` are SQL booleans; a device with no import status is neither.
 */
export function statusAfterInsert(current: string, unfinished: string, failed: string): string {
  const v = uploadStatusValues();
  return `(CASE WHEN ${unfinished} THEN ${v.pending}
    WHEN ${failed} THEN (CASE WHEN ${current} = ${v.pending} THEN ${v.pending} ELSE ${v.error} END)
    WHEN ${current} = ${v.noUpload} THEN ${v.complete} ELSE ${current} END)`;
}

/** SQL booleans: whether the import status `column` is one of the unfinished ones / the failed one (false for NULL). */
export function statusCategories(column: string): { unfinished: string; failed: string } {
  const v = uploadStatusValues();
  return { unfinished: `coalesce(${column} IN (${v.unfinished.join(', ')}), false)`, failed: `coalesce(${column} = ${v.failed}, false)` };
}

/**
 * The rule from an upload's counts (SQL integer expressions): its devices, how many of them are unfinished and how
 * many failed. PostgreSQL keeps these counts on the upload row (migration 1765100000000).
 */
export function statusOfCounts(devices: string, unfinished: string, failed: string): string {
  const v = uploadStatusValues();
  return `(CASE WHEN ${devices} = 0 THEN ${v.noUpload} WHEN ${unfinished} > 0 THEN ${v.pending}
    WHEN ${failed} > 0 THEN ${v.error} ELSE ${v.complete} END)`;
}
