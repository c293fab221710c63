import { MigrationInterface, QueryRunner, Table, TableColumn, TableIndex } from 'typeorm';

/**
 * Registered Autopilot devices (windowsAutopilotDeviceIdentity) and the tenant's Autopilot settings, plus what the
 * import worker needs on the imported devices: `storedAt` (when a row was stored, epoch ms by the database clock;
 * 0 for rows stored before this migration) and a partial index over the devices still to process (import status
 * unknown 0 or pending 1 — importedWindowsAutopilotDeviceIdentityImportStatus), oldest first, across tenants.
 */
const DEVICE = 'importedWindowsAutopilotDeviceIdentity';
const REGISTERED = 'windowsAutopilotDeviceIdentity';
const SETTINGS = 'windowsAutopilotSettings';
/** 0001-01-01T00:00:00Z in epoch ms: Graph's value for a DateTimeOffset never set. */
const MIN_DATE_MS = '-62135596800000';
/** unixepoch('subsec') needs SQLite 3.42 (sqlite3 5.1.7 bundles 3.44.2). Parenthesised: SQLite takes an expression default only so. */
const NOW_MS_SQLITE = "(CAST(unixepoch('subsec') * 1000 AS INTEGER))";
const NOW_MS_POSTGRES = 'CAST(floor(EXTRACT(EPOCH FROM statement_timestamp()) * 1000) AS bigint)';
const IMPORT_DUE = new TableIndex({ name: 'IX_device_import_due', columnNames: ['storedAt', 'id'], where: '"stateDeviceImportStatus" IN (0, 1)' });

/**
 * SQLite cannot ALTER a column default, so TypeORM rebuilds the table for a column change, and dropping the old
 * table drops its triggers (the upload-status triggers of migration 1764600000000): they are re-created afterwards.
 */
async function keepingSqliteTriggers(queryRunner: QueryRunner, table: string, change: () => Promise<void>): Promise<void> {
  const triggers = (await queryRunner.query(`SELECT "sql" FROM "sqlite_master" WHERE "type" = 'trigger' AND "tbl_name" = ?`, [table])) as { sql: string }[];
  await change();
  for (const { sql } of triggers) await queryRunner.query(sql);
}

export class RegisteredDevices1764900000000 implements MigrationInterface {
  name = 'RegisteredDevices1764900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const postgres = queryRunner.connection.options.type === 'postgres';
    const collation = postgres ? 'C' : undefined;
    const text = (name: string) => ({ name, type: 'varchar', isNullable: true, collation });
    const integer = (name: string) => ({ name, type: 'integer' });
    const dateTime = (name: string) => ({ name, type: 'bigint' });

    await queryRunner.createTable(
      new Table({
        name: REGISTERED,
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'tenantId', type: 'varchar', length: '128' },
          text('addressableUserName'),
          text('azureActiveDirectoryDeviceId'),
          text('azureAdDeviceId'),
          dateTime('deploymentProfileAssignedDateTime'),
          integer('deploymentProfileAssignmentDetailedStatus'),
          integer('deploymentProfileAssignmentStatus'),
          text('deviceAccountPassword'),
          text('deviceAccountUpn'),
          text('deviceFriendlyName'),
          text('displayName'),
          integer('enrollmentState'),
          text('groupTag'),
          dateTime('lastContactedDateTime'),
          text('managedDeviceId'),
          text('manufacturer'),
          text('model'),
          text('productKey'),
          text('purchaseOrderIdentifier'),
          integer('remediationState'),
          dateTime('remediationStateLastModifiedDateTime'),
          text('resourceName'),
          text('serialNumber'),
          text('skuNumber'),
          text('systemFamily'),
          integer('userlessEnrollmentStatus'),
          text('userPrincipalName'),
          { name: 'version', type: 'integer', default: 1 },
        ],
        indices: [
          new TableIndex({ name: 'IX_registered_tenant_id', columnNames: ['tenantId', 'id'] }),
          // the registry: a serial in the tenant (806) …
          new TableIndex({ name: 'IX_registered_tenant_serialNumber', columnNames: ['tenantId', 'serialNumber'] }),
          // … and in any tenant (808)
          new TableIndex({ name: 'IX_registered_serialNumber', columnNames: ['serialNumber'] }),
        ],
      }),
    );
    await queryRunner.createTable(
      new Table({
        name: SETTINGS,
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'tenantId', type: 'varchar', length: '128' },
          { name: 'lastManualSyncTriggerDateTime', type: 'bigint', default: MIN_DATE_MS },
          { name: 'lastSyncDateTime', type: 'bigint', default: MIN_DATE_MS },
          { name: 'syncStatus', type: 'integer', default: 0 },
          { name: 'version', type: 'integer', default: 1 },
        ],
        indices: [new TableIndex({ name: 'UQ_settings_tenant', columnNames: ['tenantId'], isUnique: true })],
      }),
    );

    if (postgres) {
      // Existing rows get 0 (a constant default: no table rewrite), new ones the clock.
      await queryRunner.query(`ALTER TABLE "${DEVICE}" ADD COLUMN "storedAt" bigint NOT NULL DEFAULT 0`);
      await queryRunner.query(`ALTER TABLE "${DEVICE}" ALTER COLUMN "storedAt" SET DEFAULT ${NOW_MS_POSTGRES}`);
    } else {
      await keepingSqliteTriggers(queryRunner, DEVICE, () =>
        queryRunner.addColumn(DEVICE, new TableColumn({ name: 'storedAt', type: 'bigint', default: NOW_MS_SQLITE })),
      );
      // The rebuild copied the old rows with the column's default (the migration's clock): they predate the column.
      await queryRunner.query(`UPDATE "${DEVICE}" SET "storedAt" = 0`);
    }
    await queryRunner.createIndex(DEVICE, IMPORT_DUE);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropIndex(DEVICE, IMPORT_DUE.name!);
    if (queryRunner.connection.options.type === 'postgres') await queryRunner.dropColumn(DEVICE, 'storedAt');
    else await keepingSqliteTriggers(queryRunner, DEVICE, () => queryRunner.dropColumn(DEVICE, 'storedAt'));
    await queryRunner.dropTable(SETTINGS);
    await queryRunner.dropTable(REGISTERED);
  }
}
