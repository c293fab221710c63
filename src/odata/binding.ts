import { DataSource, EntityTarget, ObjectLiteral } from 'typeorm';
import { ComplexType, EntityType, StructuralProperty } from './model';

/** An entity's structural values in the service's own terms: enums as numbers, Binary as Buffer, dates as epoch ms. */
export type Value = string | number | Buffer | null | Record<string, unknown>;
export type EntityRecord = Record<string, Value>;
export type Row = Record<string, unknown>;

interface ColumnPath {
  /** OData property path, `groupTag` or `state/deviceErrorCode`. */
  path: string;
  column: string;
  property: StructuralProperty;
}

/**
 * Binds an EDM entity type to its TypeORM table: each structural property path to its column. Built from the
 * TypeORM metadata, so a CSDL property without a column (or a renamed one) fails at start, not at request time.
 */
export class Binding {
  readonly table: string;
  readonly columns = new Map<string, ColumnPath>();
  /** The column whose NULL means "this complex property is null" (its first non-nullable member). */
  readonly complexNullColumn = new Map<string, string>();

  constructor(
    readonly type: EntityType,
    dataSource: DataSource,
    entity: EntityTarget<ObjectLiteral>,
  ) {
    const metadata = dataSource.getMetadata(entity);
    this.table = metadata.tableName;
    const columnFor = (propertyPath: string) => {
      const column = metadata.columns.find((c) => c.propertyPath === propertyPath);
      if (!column) throw new Error(`${type.name}: CSDL property ${propertyPath} has no TypeORM column`);
      return column.databaseName;
    };
    for (const property of type.properties.values()) {
      if (property.type.kind === 'complex') {
        const complex: ComplexType = property.type;
        for (const member of complex.properties.values()) {
          const path = `${property.name}/${member.name}`;
          this.columns.set(path, { path, column: columnFor(`${property.name}.${member.name}`), property: member });
        }
        const marker = [...complex.properties.values()].find((m) => !m.nullable);
        if (!marker) throw new Error(`${complex.name} needs a non-nullable property to tell null from empty`);
        this.complexNullColumn.set(property.name, this.columns.get(`${property.name}/${marker.name}`)!.column);
      } else {
        this.columns.set(property.name, { path: property.name, column: columnFor(property.name), property });
      }
    }
  }

  /** Reads a raw row into a record (nested complex values rebuilt). */
  fromRow(row: Row): EntityRecord {
    const record: EntityRecord = {};
    for (const property of this.type.properties.values()) {
      if (property.type.kind === 'complex') {
        if (row[this.complexNullColumn.get(property.name)!] === null || row[this.complexNullColumn.get(property.name)!] === undefined) {
          record[property.name] = null;
          continue;
        }
        const value: Record<string, unknown> = {};
        for (const member of property.type.properties.values()) {
          value[member.name] = fromColumn(member, row[this.columns.get(`${property.name}/${member.name}`)!.column]);
        }
        record[property.name] = value;
      } else {
        record[property.name] = fromColumn(property, row[this.columns.get(property.name)!.column]);
      }
    }
    return record;
  }

  /** Flattens a record (or the given properties of it) into column values. */
  toColumns(record: EntityRecord, only?: Iterable<string>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const name of only ?? this.type.properties.keys()) {
      if (this.type.key.includes(name)) continue; // keys are columns of their own, set by the caller
      const property = this.type.properties.get(name)!;
      const value = record[name];
      if (property.type.kind === 'complex') {
        const complex = value as Record<string, unknown> | null;
        for (const member of property.type.properties.values()) {
          out[this.columns.get(`${name}/${member.name}`)!.column] = complex === null ? null : (complex[member.name] ?? null);
        }
      } else {
        out[this.columns.get(name)!.column] = value ?? null;
      }
    }
    return out;
  }

  /** All columns the entity's properties are stored in. */
  allColumns(): string[] {
    return [...this.columns.values()].map((c) => c.column);
  }
}

/** A driver's value as text (text columns come back as strings already). */
const asText = (raw: unknown): string => (typeof raw === 'string' ? raw : String(raw));

function fromColumn(property: StructuralProperty, raw: unknown): Value {
  if (raw === null || raw === undefined) return null;
  const type = property.type;
  if (type.kind === 'enum') return Number(raw);
  if (type.kind === 'primitive') {
    switch (type.name) {
      case 'Edm.Int32':
      case 'Edm.DateTimeOffset':
        return Number(raw);
      case 'Edm.Binary':
        return Buffer.isBuffer(raw) ? raw : Buffer.from(raw as Uint8Array);
      default:
        return asText(raw);
    }
  }
  return raw as Value;
}
