import 'reflect-metadata';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { Database, dataSourceOptions, MIGRATIONS } from '../src/db/database';
import { uploadStatusFunctionBody as previousUploadStatusFunctionBody } from '../src/db/migrations/1764800000000-UploadStatusTriggersPostgres';
import { insertTriggerSql } from '../src/db/migrations/1764600000000-UploadStatusTriggers';
import { sqliteInsertTriggerSql, uploadStatusFunctionBody as cheaperUploadStatusFunctionBody } from '../src/db/migrations/1765000000000-CheaperUploadStatusTriggers';
import { uploadStatusFunctionBody } from '../src/db/migrations/1765100000000-UploadDeviceCounts';
import { dropSchema, freshDatabaseUrl, LIVE, startService } from './support/service';

/** Schema changes are migrations: a database made by the first one is upgraded in place, data intact. */
const databaseUrl = async () =>
  process.env.DATABASE_URL?.startsWith('postgres') ? freshDatabaseUrl() : `sqlite:${join(mkdtempSync(join(tmpdir(), 'migrate-')), 'db.sqlite')}`;

async function indexNames(db: DataSource, table: string): Promise<string[]> {
  if (db.options.type === 'postgres') {
    const rows = await db.query('SELECT indexname AS name FROM pg_indexes WHERE tablename = $1 AND schemaname = current_schema()', [table]);
    return rows.map((r: { name: string }) => r.name);
  }
  return (await db.query(`PRAGMA index_list("${table}")`)).map((r: { name: string }) => r.name);
}

describe('migrations', () => {
  it('upgrades a database created by the first migration, keeping its data', async () => {
    // arrange: a database at the first migration, with a device in it
    const url = await databaseUrl();
    const old = new DataSource({ ...dataSourceOptions(url), migrations: MIGRATIONS.slice(0, 1) });
    await old.initialize();
    await old.runMigrations();
    await old.query(
      `INSERT INTO "importedWindowsAutopilotDeviceIdentity" ("id", "tenantId", "uploadId", "serialNumber", "stateDeviceImportStatus", "stateDeviceErrorCode", "version")
       VALUES ('11111111-1111-1111-1111-111111111111', 'default', NULL, 'OLD-1', 1, 0, 1)`,
    );
    expect(await indexNames(old, 'importedWindowsAutopilotDeviceIdentity')).not.toContain('IX_device_serialNumber');
    await old.destroy();

    // act: the service opens it (migrating on start)
    const service = await startService({}, url);
    try {
      // assert
      expect(await service.app.db.dataSource.showMigrations()).toBe(false);
      expect(await indexNames(service.app.db.dataSource, 'importedWindowsAutopilotDeviceIdentity')).toContain('IX_device_serialNumber');
      expect(await indexNames(service.app.db.dataSource, 'importedWindowsAutopilotDeviceIdentityUpload')).toContain('IX_upload_tenant_created');
      expect(await indexNames(service.app.db.dataSource, 'importedWindowsAutopilotDeviceIdentity')).not.toContain('IX_device_tenant_importStatus');
      const res = await service.get(`${LIVE}/11111111-1111-1111-1111-111111111111`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ serialNumber: 'OLD-1', state: { deviceImportStatus: 'pending', deviceErrorCode: 0 } });
      // the import worker's clock column: 0 for a row stored before it existed
      const [old] = await service.app.db.dataSource.query(`SELECT "storedAt" FROM "importedWindowsAutopilotDeviceIdentity"`);
      expect(Number(old.storedAt)).toBe(0);
      expect(await indexNames(service.app.db.dataSource, 'importedWindowsAutopilotDeviceIdentity')).toContain('IX_device_import_due');
      expect(await indexNames(service.app.db.dataSource, 'windowsAutopilotDeviceIdentity')).toEqual(
        expect.arrayContaining(['IX_registered_tenant_id', 'IX_registered_tenant_serialNumber', 'IX_registered_serialNumber']),
      );
    } finally {
      await service.app.close();
    }

    // and the later migrations revert cleanly
    const db = await Database.open(url, { migrate: false });
    const sqlite = db.dataSource.options.type === 'sqlite';
    const triggers = async () =>
      sqlite
        ? (await db.dataSource.query(`SELECT name FROM sqlite_master WHERE type = 'trigger'`)).length
        : Number(
            (
              await db.dataSource.query(
                `SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                         WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal)
                      + (SELECT count(*) FROM pg_proc WHERE pronamespace = current_schema()::regnamespace) AS n`,
              )
            )[0].n,
          );
    const columns = async (table: string) => {
      const runner = db.dataSource.createQueryRunner();
      try {
        return (await runner.getTable(table))?.columns.map((c) => c.name);
      } finally {
        await runner.release();
      }
    };
    // The status trigger as the last migration left it: SQLite's INSERT trigger, PostgreSQL's trigger function.
    const statusTrigger = async (): Promise<string> =>
      sqlite
        ? (await db.dataSource.query(`SELECT sql FROM sqlite_master WHERE name = 'TR_device_insert_upload_status'`))[0].sql
        : (await db.dataSource.query(`SELECT prosrc FROM pg_proc WHERE oid = '"FN_device_upload_status"'::regproc`))[0].prosrc;
    expect(await statusTrigger()).toBe(sqlite ? sqliteInsertTriggerSql() : uploadStatusFunctionBody());
    expect(await triggers()).toBe(sqlite ? 3 : 6); // PostgreSQL: 4 triggers, the statement and the row function
    await db.dataSource.undoLastMigration(); // the upload's device counts (nothing on SQLite)
    expect(await columns('importedWindowsAutopilotDeviceIdentityUpload')).toEqual(['id', 'tenantId', 'createdDateTimeUtc', 'status', 'version']);
    expect(await statusTrigger()).toBe(sqlite ? sqliteInsertTriggerSql() : cheaperUploadStatusFunctionBody());
    expect(await triggers()).toBe(sqlite ? 3 : 5);
    await db.dataSource.undoLastMigration(); // the cheaper status triggers
    expect(await statusTrigger()).toBe(sqlite ? insertTriggerSql() : previousUploadStatusFunctionBody());
    expect(await triggers()).toBe(sqlite ? 3 : 5);
    await db.dataSource.undoLastMigration(); // registered devices, settings, storedAt (the SQLite table rebuild keeps its triggers)
    expect(await columns('windowsAutopilotDeviceIdentity')).toBeUndefined();
    expect(await columns('windowsAutopilotSettings')).toBeUndefined();
    expect(await columns('importedWindowsAutopilotDeviceIdentity')).not.toContain('storedAt');
    expect(await db.dataSource.query(`SELECT "serialNumber" FROM "importedWindowsAutopilotDeviceIdentity"`)).toEqual([{ serialNumber: 'OLD-1' }]);
    expect(await triggers()).toBe(sqlite ? 3 : 5); // PostgreSQL: 4 triggers and their function
    await db.dataSource.undoLastMigration(); // the PostgreSQL status triggers (nothing on SQLite)
    expect(await triggers()).toBe(sqlite ? 3 : 0);
    await db.dataSource.undoLastMigration(); // the redundant indexes come back
    expect(await indexNames(db.dataSource, 'importedWindowsAutopilotDeviceIdentity')).toContain('IX_device_tenant_importStatus');
    expect(await triggers()).toBe(sqlite ? 3 : 0);
    await db.dataSource.undoLastMigration(); // the SQLite status triggers (nothing on PostgreSQL)
    expect(await triggers()).toBe(0);
    await db.dataSource.undoLastMigration();
    expect(await indexNames(db.dataSource, 'importedWindowsAutopilotDeviceIdentity')).not.toContain('IX_device_scope_importStatus');
    await db.dataSource.undoLastMigration();
    expect(await indexNames(db.dataSource, 'importedWindowsAutopilotDeviceIdentity')).not.toContain('IX_device_serialNumber');
    await db.close();
    await dropSchema(url);
  });

  it('leaves the schema alone when told not to migrate', async () => {
    const url = await databaseUrl();
    const db = await Database.open(url, { migrate: false });
    expect(await db.dataSource.showMigrations()).toBe(true);
    await db.close();
    await dropSchema(url);
  });
});
