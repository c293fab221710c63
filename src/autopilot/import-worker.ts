import type { Logger } from 'pino';
import { EntityManager } from 'typeorm';
import { ImportedWindowsAutopilotDeviceIdentity } from '../../entities/ImportedWindowsAutopilotDeviceIdentity';
import { WindowsAutopilotDeviceIdentity } from '../../entities/WindowsAutopilotDeviceIdentity';
import { Database } from '../db/database';
import { quote as q } from '../db/dialect';
import { ScopedTable } from '../db/scoped-table';
import { Binding } from '../odata/binding';
import { entityType, enumType } from '../odata/model';
import { TYPE } from './graph-types';
import { registrationOf, REGISTERED_DEVICE } from './registered-device';

/**
 * The import worker (SPEC §4, issue 11): processes every imported device — the contained `deviceIdentities` of uploads
 * and the live `importedWindowsAutopilotDeviceIdentities`, one table — whose import status is `unknown` (or `pending`,
 * what rows stored before `unknown` became the initial status carry) exactly once, `delayMs` after it was stored:
 *
 *   hash missing, empty or under 64 bytes → error 802 InvalidZtdHardwareHash
 *   serial registered in the same tenant   → error 806 ZtdDeviceAlreadyAssigned
 *   serial registered in another tenant    → error 808 ZtdDeviceAssignedToOtherTenant
 *   otherwise                              → a registered windowsAutopilotDeviceIdentity, and `complete` with its id
 *
 * One transaction per batch: claim the oldest due devices (FOR UPDATE SKIP LOCKED on PostgreSQL, so instances never
 * share a device), serialise on their serial numbers, read the registry, insert the registered devices and write every
 * device's new state (bumping its version, the ETag) — so a device reads `complete` only together with the device it
 * names. Within a batch the first device of a serial wins; the next is 806 (or 808). A device without a serial number
 * registers without one and never conflicts. Upload status follows by trigger (SQLite: migration 1764600000000).
 */
export interface ImportWorkerOptions {
  /** IMPORT_DELAY_MS: how long after it was stored a device is processed. */
  delayMs: number;
  /** IMPORT_BATCH_SIZE: devices per transaction. */
  batchSize: number;
  /** IMPORT_POLL_MS: how long to sleep when no device is due (kick() wakes it sooner). */
  pollMs: number;
}

export interface ImportWorker {
  /** Lets the batch in flight commit, then stops; resolves when it has. Pending drain() calls resolve too. */
  stop(): Promise<void>;
  /** Looks for due devices now rather than after the poll interval (say, after storing devices with delay 0). */
  kick(): void;
  /** Resolves at the first pass, begun after this call, that found no due device (a failing batch keeps it waiting). */
  drain(): Promise<void>;
  /** Devices processed by this worker so far. */
  readonly processed: number;
}

type WorkerLogger = Pick<Logger, 'debug' | 'error'>;

export const IMPORT_ERRORS = {
  invalidHash: { code: 802, name: 'InvalidZtdHardwareHash' },
  alreadyAssigned: { code: 806, name: 'ZtdDeviceAlreadyAssigned' },
  otherTenant: { code: 808, name: 'ZtdDeviceAssignedToOtherTenant' },
} as const;

/** A hardware hash shorter than this is refused with 802 (SPEC §6). */
export const MIN_HASH_BYTES = 64;

/** Advisory-lock key space of serial numbers (other users of advisory locks pick other spaces). */
const SERIAL_LOCK_SPACE = 806;


/** Serial numbers per lookup statement. */
const LOOKUP_CHUNK = 500;

interface Outcome {
  id: string;
  status: number;
  registrationId: string | null;
  errorCode: number;
  errorName: string | null;
}

/** What one batch needs of a device row: its key and scope, and the values the checks and the registration read. */
const CLAIMED = ['id', 'tenantId', 'serialNumber', 'groupTag', 'productKey', 'orderIdentifier', 'assignedUserPrincipalName'];

export function startImportWorker(db: Database, logger: WorkerLogger, options: ImportWorkerOptions): ImportWorker {
  for (const [name, value, min] of [['delayMs', options.delayMs, 0], ['batchSize', options.batchSize, 1], ['pollMs', options.pollMs, 1]] as const) {
    if (!Number.isInteger(value) || value < min) throw new RangeError(`import worker: ${name} must be an integer of at least ${min}, not ${value}`);
  }
  const sql = db.dialect;
  const devices = new Binding(entityType(TYPE.device), db.dataSource, ImportedWindowsAutopilotDeviceIdentity);
  const registered = new Binding(entityType(REGISTERED_DEVICE), db.dataSource, WindowsAutopilotDeviceIdentity);
  const registeredTable = new ScopedTable(db, registered, WindowsAutopilotDeviceIdentity);
  const importStatus = enumType(TYPE.importStatus).members;
  const status = (name: string) => {
    const value = importStatus.get(name);
    if (value === undefined) throw new Error(`importedWindowsAutopilotDeviceIdentityImportStatus has no member ${name}`);
    return value;
  };
  const [UNKNOWN, PENDING, COMPLETE, ERROR] = ['unknown', 'pending', 'complete', 'error'].map(status);
  const column = (path: string) => q(devices.columns.get(path)!.column);
  const statusColumn = column('state/deviceImportStatus');
  // The to-do states as literals in ascending order: SQLite uses the partial index IX_device_import_due only for a
  // WHERE term identical to the index's, `IN (0, 1)`.
  const due = `${statusColumn} IN (${[UNKNOWN, PENDING].sort((a, b) => a - b).join(', ')}) AND "storedAt" <= ${sql.nowEpochMs} - ${sql.placeholder(1)}`;
  const claimed = CLAIMED.map((c) => (c === 'tenantId' ? c : devices.columns.get(c)!.column));
  // Only the hash's size decides (802): the database tells it without sending the 512 bytes.
  const hashColumn = devices.columns.get('hardwareIdentifier')!.column;
  // Every outcome of a batch in one statement, within the engine's parameter limit (5 per device).
  const updateChunk = Math.floor(sql.maxParameters / 5);

  async function registeredTenantsBySerial(manager: EntityManager, serials: string[]): Promise<Map<string, Set<string>>> {
    const found = new Map<string, Set<string>>();
    for (let i = 0; i < serials.length; i += LOOKUP_CHUNK) {
      const chunk = serials.slice(i, i + LOOKUP_CHUNK);
      const { rows } = await db.run(
        manager,
        `SELECT "tenantId", ${q(registered.columns.get('serialNumber')!.column)} AS "serialNumber" FROM ${q(registered.table)}
         WHERE ${q(registered.columns.get('serialNumber')!.column)} IN (${chunk.map((_, j) => sql.placeholder(j + 1)).join(', ')})`,
        chunk,
      );
      for (const row of rows as { tenantId: string; serialNumber: string }[]) {
        if (!found.has(row.serialNumber)) found.set(row.serialNumber, new Set());
        found.get(row.serialNumber)!.add(row.tenantId);
      }
    }
    return found;
  }

  /** Every device's new state in one statement per chunk, its version (ETag) bumped. */
  async function writeOutcomes(manager: EntityManager, outcomes: Outcome[]): Promise<void> {
    for (let i = 0; i < outcomes.length; i += updateChunk) {
      const params: unknown[] = [];
      const tuples = outcomes.slice(i, i + updateChunk).map((o) => {
        const values = [o.id, o.status, o.registrationId, o.errorCode, o.errorName];
        return `(${values.map((v) => sql.placeholder(params.push(v))).join(', ')})`;
      });
      await db.run(
        manager,
        `UPDATE ${q(devices.table)} SET ${statusColumn} = CAST(v.column2 AS INTEGER), ${column('state/deviceRegistrationId')} = v.column3,
           ${column('state/deviceErrorCode')} = CAST(v.column4 AS INTEGER), ${column('state/deviceErrorName')} = v.column5, "version" = "version" + 1
         FROM (VALUES ${tuples.join(', ')}) AS v WHERE ${q(devices.table)}."id" = v.column1`,
        params,
      );
    }
  }

  /** Claims and processes one batch; returns how many devices it processed (0: none due). */
  function processBatch(): Promise<number> {
    return db.write(async (manager) => {
      const rows = await db.claimRows(manager, devices.table, claimed, due, [options.delayMs], ['storedAt', 'id'], options.batchSize, [hashColumn]);
      if (rows.length === 0) return 0;
      const serialOf = (row: Record<string, unknown>) => (typeof row.serialNumber === 'string' && row.serialNumber !== '' ? row.serialNumber : null);
      const serials = [...new Set(rows.map(serialOf).filter((s): s is string => s !== null))];
      // Two instances never both find a serial free and both register it.
      if (sql.lockKeysSql && serials.length) await manager.query(sql.lockKeysSql, [SERIAL_LOCK_SPACE, serials]);
      const registry = await registeredTenantsBySerial(manager, serials);

      const outcomes: Outcome[] = [];
      const registrations: Record<string, unknown>[] = [];
      const fail = (id: string, error: { code: number; name: string }) =>
        outcomes.push({ id, status: ERROR, registrationId: null, errorCode: error.code, errorName: error.name });
      for (const row of rows) {
        const id = String(row.id);
        const tenantId = String(row.tenantId);
        const hashBytes = row[`${hashColumn}Length`] as number | string | null;
        const serial = serialOf(row);
        const tenants = serial === null ? undefined : registry.get(serial);
        if (hashBytes === null || Number(hashBytes) < MIN_HASH_BYTES) fail(id, IMPORT_ERRORS.invalidHash);
        else if (tenants?.has(tenantId)) fail(id, IMPORT_ERRORS.alreadyAssigned);
        else if (tenants && tenants.size > 0) fail(id, IMPORT_ERRORS.otherTenant);
        else {
          const device = registrationOf({
            serialNumber: serial,
            groupTag: (row.groupTag as string | null) ?? null,
            productKey: (row.productKey as string | null) ?? null,
            orderIdentifier: (row.orderIdentifier as string | null) ?? null,
            assignedUserPrincipalName: (row.assignedUserPrincipalName as string | null) ?? null,
          });
          registrations.push({ id: device.id, tenantId, version: 1, ...registered.toColumns(device.record) });
          if (serial !== null) registry.set(serial, new Set([tenantId]));
          outcomes.push({ id, status: COMPLETE, registrationId: device.id, errorCode: 0, errorName: null });
        }
      }
      await registeredTable.insert(manager, registrations);
      await writeOutcomes(manager, outcomes);
      logger.debug({ devices: rows.length, registered: registrations.length }, 'import batch processed');
      return rows.length;
    });
  }

  // --- the loop ----------------------------------------------------------------------------------------------------
  let stopping = false;
  let kicked = false;
  let wake: (() => void) | undefined;
  let processed = 0;
  /** drain() calls are numbered; a pass that finds nothing due answers every call made before it began. */
  let requested = 0;
  const drains: { seq: number; resolve: () => void }[] = [];
  const settle = (upTo: number) => {
    for (let i = drains.length - 1; i >= 0; i--) {
      if (drains[i].seq <= upTo) drains.splice(i, 1)[0].resolve();
    }
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      timer.unref();
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });

  const loop = (async () => {
    while (!stopping) {
      const seen = requested;
      kicked = false;
      let count: number;
      try {
        count = await processBatch();
      } catch (err) {
        // Nothing of a failed batch is written (one transaction); its devices are claimed again next time.
        logger.error({ err }, 'import batch failed; retrying after the poll interval');
        count = -1;
      }
      processed += Math.max(0, count);
      if (stopping) break;
      if (count > 0) continue;
      if (count === 0) settle(seen);
      if (!kicked) await sleep(options.pollMs);
    }
    settle(Infinity);
  })();

  const kick = () => {
    kicked = true;
    wake?.();
  };
  return {
    async stop() {
      stopping = true;
      wake?.();
      await loop;
    },
    kick,
    drain() {
      if (stopping) return Promise.resolve();
      const seq = ++requested;
      const done = new Promise<void>((resolve) => drains.push({ seq, resolve }));
      kick();
      return done;
    },
    get processed() {
      return processed;
    },
  };
}
