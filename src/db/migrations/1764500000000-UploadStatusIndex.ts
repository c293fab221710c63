import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

/** An upload's status is derived from its devices' import status: index (tenant, upload, status) for it. */
export class UploadStatusIndex1764500000000 implements MigrationInterface {
  name = 'UploadStatusIndex1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createIndex(
      'importedWindowsAutopilotDeviceIdentity',
      new TableIndex({ name: 'IX_device_scope_importStatus', columnNames: ['tenantId', 'uploadId', 'stateDeviceImportStatus'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('importedWindowsAutopilotDeviceIdentity', 'IX_device_scope_importStatus');
  }
}
