import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

/**
 * Every device write maintains every index. Two are covered by later ones: (tenantId, stateDeviceImportStatus) by
 * (tenantId, uploadId, stateDeviceImportStatus) — every device query is scoped by upload or by `uploadId IS NULL` —
 * and (tenantId, serialNumber) by (serialNumber).
 */
export class DropRedundantIndexes1764700000000 implements MigrationInterface {
  name = 'DropRedundantIndexes1764700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('importedWindowsAutopilotDeviceIdentity', 'IX_device_tenant_importStatus');
    await queryRunner.dropIndex('importedWindowsAutopilotDeviceIdentity', 'IX_device_tenant_serialNumber');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createIndex(
      'importedWindowsAutopilotDeviceIdentity',
      new TableIndex({ name: 'IX_device_tenant_serialNumber', columnNames: ['tenantId', 'serialNumber'] }),
    );
    await queryRunner.createIndex(
      'importedWindowsAutopilotDeviceIdentity',
      new TableIndex({ name: 'IX_device_tenant_importStatus', columnNames: ['tenantId', 'stateDeviceImportStatus'] }),
    );
  }
}
