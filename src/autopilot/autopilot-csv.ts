import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { EntityRecord } from '../odata/binding';
import { badRequest } from '../odata/errors';

/**
 * The Autopilot CSV (as Get-WindowsAutopilotInfo writes it): one codec for both directions —
 * `autopilotDeviceStream` writes it, the `import` action reads it.
 */
const COLUMNS: { header: string; property: string }[] = [
  { header: 'Device Serial Number', property: 'serialNumber' },
  { header: 'Windows Product ID', property: 'productKey' },
  { header: 'Hardware Hash', property: 'hardwareIdentifier' },
  { header: 'Group Tag', property: 'groupTag' },
  { header: 'Assigned User', property: 'assignedUserPrincipalName' },
];
const BY_HEADER = new Map(COLUMNS.map((c) => [c.header.toLowerCase(), c.property]));

/** Device records as the Autopilot CSV (CRLF line ends, a header line, Binary as base64). */
export function devicesToCsv(records: EntityRecord[]): string {
  const rows = records.map((record) =>
    COLUMNS.map(({ property }) => {
      const value = record[property];
      if (value === null || value === undefined) return '';
      if (Buffer.isBuffer(value)) return value.toString('base64');
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
    }),
  );
  return stringify([COLUMNS.map((c) => c.header), ...rows], { record_delimiter: '\r\n' });
}

/** Device bodies (property → JSON value) from an Autopilot CSV; a malformed line is a 400 naming it. */
export function devicesFromCsv(raw: Buffer): Record<string, unknown>[] {
  let rows: string[][];
  try {
    rows = parse(raw, { bom: true, skip_empty_lines: true, trim: true, relax_column_count: false });
  } catch (err) {
    const line = (err as { lines?: number }).lines;
    throw badRequest(`The CSV body cannot be read${line ? ` (line ${line})` : ''}: ${(err as Error).message}`);
  }
  const [header, ...records] = rows;
  if (!header) throw badRequest('The CSV body is empty; expected a header line such as "Device Serial Number,Windows Product ID,Hardware Hash".');
  const properties = header.map((name) => {
    const property = BY_HEADER.get(name.toLowerCase());
    if (!property) throw badRequest(`Unknown CSV column '${name}'; known columns are ${COLUMNS.map((c) => c.header).join(', ')} (any case).`, name);
    return property;
  });
  if (!properties.includes('serialNumber') || !properties.includes('hardwareIdentifier')) {
    throw badRequest("The CSV needs the columns 'Device Serial Number' and 'Hardware Hash'.");
  }
  return records.map((record) => Object.fromEntries(properties.map((property, i) => [property, record[i] === '' ? null : record[i]])));
}
