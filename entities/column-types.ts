import { ColumnType, EntityTarget, getMetadataArgsStorage, ObjectLiteral } from 'typeorm';
import type { Dialect } from '../src/db/dialect';

/**
 * Column options that differ per engine. Decorators run at import time, before anyone knows which engine a
 * DataSource will use (and one process may open both: the tests do), so entities use these markers and
 * `adaptColumnsTo` rewrites them for the engine right before a DataSource initialises.
 */
export const BINARY: ColumnType = 'blob';
/** Text compared byte-wise (PostgreSQL collation "C"), so $orderby and gt/lt agree between SQLite and PostgreSQL. */
export const BYTEWISE = 'bytewise';
/**
 * Default of a column that records when its row was stored: the database clock in epoch milliseconds, so rows
 * written by any instance (and by INSERTs that do not name the column) compare on one clock.
 */
export const NOW_EPOCH_MS = (): string => 'now-epoch-ms';
/** 0001-01-01T00:00:00Z in epoch milliseconds: what Graph returns for a DateTimeOffset that was never set. */
export const GRAPH_MIN_DATE_MS = -62135596800000;

const binaryColumns = new Set<object>();
const bytewiseColumns = new Set<object>();
const nowColumns = new Set<object>();

export function adaptColumnsTo(dialect: Dialect, targets: EntityTarget<ObjectLiteral>[]): void {
  for (const column of getMetadataArgsStorage().columns) {
    if (!targets.includes(column.target)) continue;
    const options = column.options;
    if (options.type === BINARY) binaryColumns.add(column);
    if (options.collation === BYTEWISE) bytewiseColumns.add(column);
    if (options.default === NOW_EPOCH_MS) nowColumns.add(column);
    if (binaryColumns.has(column)) options.type = dialect.binaryType as ColumnType;
    if (bytewiseColumns.has(column)) options.collation = dialect.bytewiseCollation;
    if (nowColumns.has(column)) options.default = () => dialect.nowEpochMs;
  }
}
