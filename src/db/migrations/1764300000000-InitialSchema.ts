import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

/** The first schema: uploads and device identities, with the indexes the common filters need. */
export class InitialSchema1764300000000 implements MigrationInterface {
  name = 'InitialSchema1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const postgres = queryRunner.connection.options.type === 'postgres';
    const binary = postgres ? 'bytea' : 'blob';
    const collation = postgres ? 'C' : undefined;
    const text = (name: string) => ({ name, type: 'varchar', isNullable: true, collation });

    await queryRunner.createTable(
      new Table({
        name: 'importedWindowsAutopilotDeviceIdentityUpload',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'tenantId', type: 'varchar', length: '128' },
          { name: 'createdDateTimeUtc', type: 'bigint' },
          { name: 'status', type: 'integer', default: 0 },
          { name: 'version', type: 'integer', default: 1 },
        ],
        indices: [new TableIndex({ name: 'IX_upload_tenant_id', columnNames: ['tenantId', 'id'] })],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: 'importedWindowsAutopilotDeviceIdentity',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'tenantId', type: 'varchar', length: '128' },
          { name: 'uploadId', type: 'varchar', length: '36', isNullable: true },
          text('orderIdentifier'),
          text('groupTag'),
          text('serialNumber'),
          text('productKey'),
          text('importId'),
          { name: 'hardwareIdentifier', type: binary, isNullable: true },
          { name: 'stateDeviceImportStatus', type: 'integer', isNullable: true },
          text('stateDeviceRegistrationId'),
          { name: 'stateDeviceErrorCode', type: 'integer', isNullable: true },
          text('stateDeviceErrorName'),
          text('assignedUserPrincipalName'),
          { name: 'version', type: 'integer', default: 1 },
        ],
        indices: [
          new TableIndex({ name: 'IX_device_scope_id', columnNames: ['tenantId', 'uploadId', 'id'] }),
          new TableIndex({ name: 'IX_device_scope_groupTag', columnNames: ['tenantId', 'uploadId', 'groupTag'] }),
          new TableIndex({ name: 'IX_device_tenant_serialNumber', columnNames: ['tenantId', 'serialNumber'] }),
          new TableIndex({ name: 'IX_device_tenant_importStatus', columnNames: ['tenantId', 'stateDeviceImportStatus'] }),
        ],
      }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('importedWindowsAutopilotDeviceIdentity');
    await queryRunner.dropTable('importedWindowsAutopilotDeviceIdentityUpload');
  }
}
