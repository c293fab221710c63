import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource, EntityMetadata } from 'typeorm';
import { ImportedWindowsAutopilotDeviceIdentity } from '../entities/ImportedWindowsAutopilotDeviceIdentity';
import { ImportedWindowsAutopilotDeviceIdentityUpload } from '../entities/ImportedWindowsAutopilotDeviceIdentityUpload';
import { WindowsAutopilotDeviceIdentity } from '../entities/WindowsAutopilotDeviceIdentity';
import { Binding } from '../src/odata/binding';
import { EntityType, loadModel, model } from '../src/odata/model';
import { TYPE } from '../src/autopilot/graph-types';
import { startService, TestService } from './support/service';
import { mutate } from './support/mutate';

/**
 * entities/ mirror the CSDL name for name (STYLE 1): every structural property of every stored entity type has a
 * TypeORM column, the migrated table has it, and the column can hold what the CSDL allows. Binding (src/odata/binding.ts)
 * refuses a CSDL property without a column at start-up.
 */
const fileText = readFileSync(join(__dirname, '..', 'metadata', 'graph-autopilot.xml'), 'utf8');


/** Entity types that have rows: the targets of containment navigations (deviceManagement is a singleton with no table, entity is abstract). */
function storedTypes(): EntityType[] {
  const targets = new Map<string, EntityType>();
  for (const type of model().entityTypes.values()) {
    for (const nav of type.navigations.values()) if (nav.containsTarget) targets.set(nav.target.qualifiedName, nav.target);
  }
  return [...targets.values()];
}

interface CsdlColumn {
  /** TypeORM property path: `groupTag`, `state.deviceImportStatus`. */
  propertyPath: string;
  /** Whether the CSDL lets the value be null (a member of a nullable complex property can be null with it). */
  nullable: boolean;
  key: boolean;
}

function csdlColumns(type: EntityType): CsdlColumn[] {
  return [...type.properties.values()].flatMap((property) =>
    property.type.kind === 'complex'
      ? [...property.type.properties.values()].map((member) => ({
          propertyPath: `${property.name}.${member.name}`,
          nullable: property.nullable || member.nullable,
          key: false,
        }))
      : [{ propertyPath: property.name, nullable: property.nullable, key: type.key.includes(property.name) }],
  );
}

const entityName = (type: EntityType) => type.name.charAt(0).toUpperCase() + type.name.slice(1);

describe('CSDL entity types → TypeORM columns', () => {
  let service: TestService;
  let dataSource: DataSource;
  beforeAll(async () => {
    service = await startService();
    dataSource = service.app.db.dataSource;
  });
  afterAll(() => service.close());

  it('stores exactly the upload, the imported device, the registered device and the Autopilot settings', () => {
    expect(storedTypes().map((t) => t.qualifiedName).sort()).toEqual(
      [TYPE.device, TYPE.upload, 'microsoft.graph.windowsAutopilotDeviceIdentity', 'microsoft.graph.windowsAutopilotSettings'].sort(),
    );
  });

  describe.each(storedTypes().map((t) => [t.name, t] as const))('%s', (_name, type) => {
    let metadata: EntityMetadata;
    beforeAll(() => {
      metadata = dataSource.getMetadata(entityName(type));
    });

    it('is an entity class and a table of the same name', () => {
      expect({ name: metadata.name, table: metadata.tableName }).toEqual({ name: entityName(type), table: type.name });
      expect(metadata.primaryColumns.map((c) => c.propertyPath)).toEqual(type.key);
    });

    it('has a column for every structural property, nullable exactly where the CSDL allows null', () => {
      const columns = csdlColumns(type).map(({ propertyPath }) => {
        const column = metadata.columns.find((c) => c.propertyPath === propertyPath);
        return { propertyPath, column: column !== undefined, nullable: column?.isNullable, primary: column?.isPrimary };
      });

      expect(columns).toEqual(csdlColumns(type).map(({ propertyPath, nullable, key }) => ({ propertyPath, column: true, nullable, primary: key })));
    });

    it('has those columns in the migrated table, with the same nullability', async () => {
      const runner = dataSource.createQueryRunner();
      try {
        const table = await runner.getTable(metadata.tablePath);
        const columns = csdlColumns(type).map(({ propertyPath }) => {
          const name = metadata.columns.find((c) => c.propertyPath === propertyPath)?.databaseName ?? '(no TypeORM column)';
          return { propertyPath, name, nullable: table?.findColumnByName(name)?.isNullable };
        });

        expect(table).toBeDefined();
        expect(columns).toEqual(
          csdlColumns(type).map(({ propertyPath, nullable }) => ({
            propertyPath,
            name: metadata.columns.find((c) => c.propertyPath === propertyPath)?.databaseName ?? '(no TypeORM column)',
            nullable,
          })),
        );
      } finally {
        await runner.release();
      }
    });

    it('is what Binding binds: one column per property path', () => {
      const binding = new Binding(type, dataSource, metadata.target);

      expect([...binding.columns.keys()]).toEqual(csdlColumns(type).map((c) => c.propertyPath.replace('.', '/')));
    });
  });

  it.each([
    [
      'a device property',
      ImportedWindowsAutopilotDeviceIdentity,
      TYPE.device,
      '<Property Name="importId" Type="Edm.String">',
      '<Property Name="deviceName" Type="Edm.String" /><Property Name="importId" Type="Edm.String">',
      'importedWindowsAutopilotDeviceIdentity: CSDL property deviceName has no TypeORM column',
    ],
    [
      'a member of the complex state',
      ImportedWindowsAutopilotDeviceIdentity,
      TYPE.device,
      '<Property Name="deviceErrorName" Type="Edm.String">',
      '<Property Name="deviceOwner" Type="Edm.String" /><Property Name="deviceErrorName" Type="Edm.String">',
      'importedWindowsAutopilotDeviceIdentity: CSDL property state.deviceOwner has no TypeORM column',
    ],
    [
      'an upload property',
      ImportedWindowsAutopilotDeviceIdentityUpload,
      TYPE.upload,
      '<Property Name="createdDateTimeUtc" Type="Edm.DateTimeOffset" Nullable="false">',
      '<Property Name="lastModifiedDateTime" Type="Edm.DateTimeOffset" /><Property Name="createdDateTimeUtc" Type="Edm.DateTimeOffset" Nullable="false">',
      'importedWindowsAutopilotDeviceIdentityUpload: CSDL property lastModifiedDateTime has no TypeORM column',
    ],
    [
      'a registered-device property',
      WindowsAutopilotDeviceIdentity,
      'microsoft.graph.windowsAutopilotDeviceIdentity',
      '<Property Name="skuNumber" Type="Edm.String">',
      '<Property Name="chassisType" Type="Edm.String" /><Property Name="skuNumber" Type="Edm.String">',
      'windowsAutopilotDeviceIdentity: CSDL property chassisType has no TypeORM column',
    ],
  ])('Binding refuses a CSDL with %s that has no column (negative control)', (_case, entity, typeName, from, to, message) => {
    const type = loadModel(mutate(fileText, from, to)).entityTypes.get(typeName)!;

    expect(() => new Binding(type, dataSource, entity)).toThrow(message);
  });
});
