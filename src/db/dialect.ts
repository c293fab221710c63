/** SQL that differs between the two engines. Everything else the translator writes is common SQL. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** 0-based position of `needle` in `haystack`, -1 when absent (OData indexof). */
  indexOf(haystack: string, needle: string): string;
  /** true when `value` ends with `suffix`. */
  endsWith(value: string, suffix: string): string;
  /** A calendar part of an epoch-milliseconds column, in UTC. */
  datePart(part: 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second', epochMs: string): string;
}

const SQLITE_PARTS = { year: '%Y', month: '%m', day: '%d', hour: '%H', minute: '%M', second: '%S' } as const;

const sqlite: Dialect = {
  name: 'sqlite',
  indexOf: (h, n) => `(instr(${h}, ${n}) - 1)`,
  endsWith: (v, s) => `(substr(${v}, -length(${s})) = ${s} OR length(${s}) = 0)`,
  datePart: (part, col) => `CAST(strftime('${SQLITE_PARTS[part]}', ${col} / 1000, 'unixepoch') AS INTEGER)`,
};

const postgres: Dialect = {
  name: 'postgres',
  indexOf: (h, n) => `(strpos(${h}, ${n}) - 1)`,
  endsWith: (v, s) => `(right(${v}, length(${s})) = ${s})`,
  datePart: (part, col) =>
    `CAST(floor(EXTRACT(${part.toUpperCase()} FROM to_timestamp(${col} / 1000.0) AT TIME ZONE 'UTC')) AS INTEGER)`,
};

export function dialectFor(type: string): Dialect {
  if (type === 'sqlite') return sqlite;
  if (type === 'postgres') return postgres;
  throw new Error(`Unsupported database type ${type}`);
}
