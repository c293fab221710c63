import { ColumnType, EntityTarget, getMetadataArgsStorage, ObjectLiteral } from 'typeorm';

/**
 * Column options that differ per engine. Decorators run at import time, before anyone knows which engine a
 * DataSource will use (and one process may open both: the tests do), so entities use these markers and
 * `adaptColumnsTo` rewrites them for the engine right before a DataSource initialises.
 */
export const BINARY: ColumnType = 'blob';
/** Text compared byte-wise (PostgreSQL collation "C"), so $orderby and gt/lt agree between SQLite and PostgreSQL. */
export const BYTEWISE = 'bytewise';

const binaryColumns = new Set<object>();
const bytewiseColumns = new Set<object>();

export function adaptColumnsTo(engine: 'sqlite' | 'postgres', targets: EntityTarget<ObjectLiteral>[]): void {
  for (const column of getMetadataArgsStorage().columns) {
    if (!targets.includes(column.target)) continue;
    const options = column.options;
    if (options.type === BINARY) binaryColumns.add(column);
    if (options.collation === BYTEWISE) bytewiseColumns.add(column);
    if (binaryColumns.has(column)) options.type = engine === 'postgres' ? 'bytea' : 'blob';
    if (bytewiseColumns.has(column)) options.collation = engine === 'postgres' ? 'C' : undefined;
  }
}
