import { Client } from 'pg';

/** Command-line flags of the bench scripts: `--name value` numbers and the `--pg` switch. */
export const args = process.argv.slice(2);

export function flag(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

export const PG = args.includes('--pg');

/**
 * Where a bench script's service keeps its data: `sqliteFile`, or with `--pg` a fresh schema of DATABASE_URL (or the
 * local test database). `drop()` removes the schema again; `analyze(tables)` refreshes PostgreSQL's statistics of
 * those tables of the schema, as autovacuum would a little after a bulk load (nothing on SQLite).
 */
export async function benchDatabase(
  prefix: string,
  sqliteFile: string,
): Promise<{ url: string; drop(): Promise<void>; analyze(tables: string[]): Promise<void> }> {
  if (!PG) return { url: `sqlite:${sqliteFile}`, drop: () => Promise.resolve(), analyze: () => Promise.resolve() };
  const base = process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `${prefix}_${Date.now()}`;
  const run = async (sql: string, connectionString = base) => {
    const client = new Client({ connectionString });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE SCHEMA "${schema}"`);
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    drop: () => run(`DROP SCHEMA "${schema}" CASCADE`),
    analyze: (tables) => run(`ANALYZE ${tables.map((t) => `"${schema}"."${t}"`).join(', ')}`),
  };
}
