import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SQLite only: an upload's `status` follows its devices inside the very statement that changes a device, so a
 * device write never needs a second statement (or a transaction) for it. Same rule as UploadsController.refreshStatus
 * (which PostgreSQL keeps using, where concurrent instances need the upload row locked first):
 * noUpload (0) without devices; pending (1) while any device is unknown/pending/partial (0, 1, 2); then error (3) if
 * any failed (4), else complete (2). The ETag version moves only when the status does.
 */
const DEVICE = '"importedWindowsAutopilotDeviceIdentity"';
const UPLOAD = '"importedWindowsAutopilotDeviceIdentityUpload"';

function refresh(row: 'NEW' | 'OLD'): string {
  const exists = (condition: string) =>
    `EXISTS (SELECT 1 FROM ${DEVICE} d WHERE d."tenantId" = ${row}."tenantId" AND d."uploadId" = ${row}."uploadId"${condition})`;
  const status = `(CASE WHEN NOT ${exists('')} THEN 0
    WHEN ${exists(' AND d."stateDeviceImportStatus" IN (0, 1, 2)')} THEN 1
    WHEN ${exists(' AND d."stateDeviceImportStatus" = 4')} THEN 3 ELSE 2 END)`;
  return `UPDATE ${UPLOAD} SET "status" = ${status}, "version" = "version" + 1
    WHERE "id" = ${row}."uploadId" AND "tenantId" = ${row}."tenantId" AND "status" <> ${status};`;
}

/** The row trigger on INSERT, as this migration creates it. */
export function insertTriggerSql(): string {
  return `CREATE TRIGGER "TR_device_insert_upload_status" AFTER INSERT ON ${DEVICE} WHEN NEW."uploadId" IS NOT NULL BEGIN ${refresh('NEW')} END`;
}

export class UploadStatusTriggers1764600000000 implements MigrationInterface {
  name = 'UploadStatusTriggers1764600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'sqlite') return;
    await queryRunner.query(insertTriggerSql());
    await queryRunner.query(
      `CREATE TRIGGER "TR_device_update_upload_status" AFTER UPDATE OF "stateDeviceImportStatus" ON ${DEVICE}
       WHEN NEW."uploadId" IS NOT NULL AND OLD."stateDeviceImportStatus" IS NOT NEW."stateDeviceImportStatus" BEGIN ${refresh('NEW')} END`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "TR_device_delete_upload_status" AFTER DELETE ON ${DEVICE} WHEN OLD."uploadId" IS NOT NULL BEGIN ${refresh('OLD')} END`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.options.type !== 'sqlite') return;
    for (const name of ['TR_device_insert_upload_status', 'TR_device_update_upload_status', 'TR_device_delete_upload_status']) {
      await queryRunner.query(`DROP TRIGGER IF EXISTS "${name}"`);
    }
  }
}
