import { ColumnType } from 'typeorm';

/**
 * Column types that differ per engine. The engine is fixed per process by DATABASE_URL, which is read here because
 * entity decorators run at import time; everything else about the engine lives in src/db/.
 */
const onPostgres = /^postgres(ql)?:/.test(process.env.DATABASE_URL ?? '');

export const BINARY: ColumnType = onPostgres ? 'bytea' : 'blob';
/** Text compared byte-wise on both engines, so $orderby and gt/lt agree between SQLite and PostgreSQL. */
export const TEXT_COLLATION: string | undefined = onPostgres ? 'C' : undefined;
