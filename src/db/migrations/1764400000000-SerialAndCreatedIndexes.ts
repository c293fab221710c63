import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

/**
 * Indexes for two lookups that the first schema served by scanning: uploads of a tenant in creation order, and a
 * serial number across all tenants (the registry of registered devices spans tenants: 806/808).
 */
export class SerialAndCreatedIndexes1764400000000 implements MigrationInterface {
  name = 'SerialAndCreatedIndexes1764400000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createIndex(
      'importedWindowsAutopilotDeviceIdentityUpload',
      new TableIndex({ name: 'IX_upload_tenant_created', columnNames: ['tenantId', 'createdDateTimeUtc'] }),
    );
    await queryRunner.createIndex(
      'importedWindowsAutopilotDeviceIdentity',
      new TableIndex({ name: 'IX_device_serialNumber', columnNames: ['serialNumber'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex('importedWindowsAutopilotDeviceIdentity', 'IX_device_serialNumber');
    await queryRunner.dropIndex('importedWindowsAutopilotDeviceIdentityUpload', 'IX_upload_tenant_created');
  }
}
