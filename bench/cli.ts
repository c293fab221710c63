/** Command-line flags of the bench scripts: `--name value` numbers and the `--pg` switch. */
export const args = process.argv.slice(2);

export function flag(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

export const PG = args.includes('--pg');
