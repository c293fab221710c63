import { MigrationInterface, QueryRunner } from 'typeorm';
import { uploadStatusCase, uploadStatusValues } from '../upload-status-rule';

/**
 * PostgreSQL only: the database keeps an upload's `status` in step with its devices, as SQLite's triggers
 * (UploadStatusTriggers1764600000000) do, so a device written by any instance, or by hand, moves it. Statement-level
 * triggers with transition tables: one recompute per affected upload per statement, however many rows it wrote.
 * The ETag version moves only when the status does. Devices with no upload (the live collection) are ignored.
 *
 * Concurrent writers (READ COMMITTED): the trigger locks the affected upload rows (in id order, so two writers never
 * deadlock on them) and only then derives the status in a new statement, which takes a fresh snapshot. The lock is
 * held to commit, so each writer derives after every earlier writer of that upload committed: the last one to
 * commit counts every device, and the status is never stale.
 *
 * The enum numbers come from the CSDL model (src/db/upload-status-rule.ts) and are written into the function when
 * it is created: if they ever changed, a new migration would have to recreate it (test/upload-status.test.ts fails).
 */
const DEVICE = '"importedWindowsAutopilotDeviceIdentity"';
const UPLOAD = '"importedWindowsAutopilotDeviceIdentityUpload"';
const FUNCTION = '"FN_device_upload_status"';
/** Each trigger and the transition tables it passes (PostgreSQL allows them only on single-event triggers). */
const TRIGGERS = [
  { name: 'TR_device_insert_upload_status', event: 'INSERT', referencing: 'REFERENCING NEW TABLE AS new_devices' },
  { name: 'TR_device_update_upload_status', event: 'UPDATE', referencing: 'REFERENCING OLD TABLE AS old_devices NEW TABLE AS new_devices' },
  { name: 'TR_device_delete_upload_status', event: 'DELETE', referencing: 'REFERENCING OLD TABLE AS old_devices' },
  { name: 'TR_device_truncate_upload_status', event: 'TRUNCATE', referencing: '' },
];

/**
 * A plpgsql trigger function with the migration's search_path pinned: raw SQL from a session with another
 * search_path still finds the tables.
 */
export function triggerFunctionSql(verb: 'CREATE' | 'CREATE OR REPLACE', name: string, body: string): string {
  return `${verb} FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $body$${body}$body$`;
}

/** The statement trigger of one event, as this migration creates it (with the transition tables that event passes). */
export function statementTriggerSql(event: (typeof TRIGGERS)[number]['event']): string {
  const t = TRIGGERS.find((x) => x.event === event)!;
  return `CREATE TRIGGER "${t.name}" AFTER ${t.event} ON ${DEVICE} ${t.referencing} FOR EACH STATEMENT EXECUTE FUNCTION ${FUNCTION}()`;
}

/** Derives the status of the uploads `x` that `where` picks, writing (and bumping the ETag) only where it changed. */
export function deriveStatus(where: string): string {
  const status = uploadStatusCase(DEVICE, `d."tenantId" = x."tenantId" AND d."uploadId" = x."id"`);
  return `UPDATE ${UPLOAD} u SET "status" = s.v, "version" = u."version" + 1
    FROM (SELECT x."id", ${status} AS v FROM ${UPLOAD} x${where}) s
    WHERE u."id" = s."id" AND u."status" <> s.v`;
}

/** The body of the trigger function: which uploads the statement touched, then lock and derive them. */
export function uploadStatusFunctionBody(): string {
  const row = `"id", "tenantId", "uploadId", "stateDeviceImportStatus"`;
  return `
DECLARE
  affected varchar[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT n."uploadId") INTO affected FROM new_devices n WHERE n."uploadId" IS NOT NULL;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(DISTINCT o."uploadId") INTO affected FROM old_devices o WHERE o."uploadId" IS NOT NULL;
  ELSIF TG_OP = 'UPDATE' THEN
    -- (UPDATE OF would not allow transition tables.) Only rows whose upload or import status changed count: they
    -- are on one side of the statement and not on the other. A groupTag PATCH locks nothing.
    SELECT array_agg(DISTINCT c."uploadId") INTO affected FROM (
      (SELECT ${row} FROM new_devices EXCEPT SELECT ${row} FROM old_devices)
      UNION ALL
      (SELECT ${row} FROM old_devices EXCEPT SELECT ${row} FROM new_devices)
    ) c WHERE c."uploadId" IS NOT NULL;
${lockAndDerive()}`;
}

/**
 * The end of the function body from TRUNCATE on (every upload with a status is affected), after the branches that
 * filled `affected`: lock the affected uploads in id order, then derive their status in a fresh statement.
 */
export function lockAndDerive(): string {
  return `  ELSE
    -- TRUNCATE: no transition tables; every upload lost its devices.
    SELECT array_agg(u."id") INTO affected FROM ${UPLOAD} u WHERE u."status" <> ${uploadStatusValues().noUpload};
  END IF;
  IF affected IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM 1 FROM ${UPLOAD} u WHERE u."id" = ANY (affected) ORDER BY u."id" FOR UPDATE;
  -- A new statement, so a fresh snapshot: it sees what the writers that held these locks before us committed.
  ${deriveStatus(' WHERE x."id" = ANY (affected)')};
  RETURN NULL;
END`;
}

export class UploadStatusTriggersPostgres1764800000000 implements MigrationInterface {
  name = 'UploadStatusTriggersPostgres1764800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    await queryRunner.query(triggerFunctionSql('CREATE', FUNCTION, uploadStatusFunctionBody()));
    for (const t of TRIGGERS) await queryRunner.query(statementTriggerSql(t.event));
    // From here on the database owns the status: start from the right one (rows written by hand before may be off).
    await queryRunner.query(deriveStatus(''));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'postgres') return;
    for (const t of TRIGGERS) await queryRunner.query(`DROP TRIGGER IF EXISTS "${t.name}" ON ${DEVICE}`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS ${FUNCTION}()`);
  }
}
