import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import Database from 'better-sqlite3';

/**
 * The bound: the five benchmarked operations on node:http + better-sqlite3 with prepared statements and no
 * validation, no auth, no OData. What a hand-written server on this machine can do; the service is measured
 * as a ratio to it. Usage: node raw-server.js <port> <sqlite file>
 */
const [port, file] = process.argv.slice(2);
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`CREATE TABLE IF NOT EXISTS device (
  id TEXT PRIMARY KEY, uploadId TEXT, orderIdentifier TEXT, groupTag TEXT, serialNumber TEXT, productKey TEXT,
  importId TEXT, hardwareIdentifier BLOB, status INTEGER, registrationId TEXT, errorCode INTEGER, errorName TEXT,
  upn TEXT, version INTEGER);
  CREATE INDEX IF NOT EXISTS ix_upload_group ON device (uploadId, groupTag);
  CREATE TABLE IF NOT EXISTS upload (id TEXT PRIMARY KEY, created INTEGER, status INTEGER);`);

const STATUS = ['unknown', 'pending', 'partial', 'complete', 'error'];
const get = db.prepare('SELECT * FROM device WHERE id = ?');
const patch = db.prepare('UPDATE device SET groupTag = ?, status = ?, version = version + 1 WHERE id = ? RETURNING *');
const list = db.prepare('SELECT * FROM device WHERE uploadId = ? AND groupTag = ? ORDER BY id LIMIT ?');
const insertUpload = db.prepare('INSERT INTO upload (id, created, status) VALUES (?, ?, 1)');
const insertDevice = db.prepare(
  'INSERT INTO device (id, uploadId, groupTag, serialNumber, productKey, hardwareIdentifier, status, errorCode, upn, version) VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?, 1)',
);
type Row = Record<string, any>;
const insertMany = db.transaction((uploadId: string | null, devices: Row[]) =>
  devices.map((d) => {
    const id = randomUUID();
    insertDevice.run(id, uploadId, d.groupTag ?? null, d.serialNumber ?? null, d.productKey ?? null, d.hardwareIdentifier ? Buffer.from(d.hardwareIdentifier, 'base64') : null, d.assignedUserPrincipalName ?? null);
    return get.get(id) as Row;
  }),
);

const json = (row: Row) => ({
  id: row.id,
  orderIdentifier: row.orderIdentifier,
  groupTag: row.groupTag,
  serialNumber: row.serialNumber,
  productKey: row.productKey,
  importId: row.importId,
  hardwareIdentifier: row.hardwareIdentifier ? (row.hardwareIdentifier as Buffer).toString('base64') : null,
  state: { deviceImportStatus: STATUS[row.status], deviceRegistrationId: row.registrationId, deviceErrorCode: row.errorCode, deviceErrorName: row.errorName },
  assignedUserPrincipalName: row.upn,
});

function body(req: IncomingMessage): Promise<any> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined));
  });
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url!, 'http://x');
  const parts = url.pathname.split('/').filter(Boolean);
  let out: unknown;
  let status = 200;
  if (req.method === 'GET' && parts[0] === 'devices') {
    const row = get.get(parts[1]) as Row | undefined;
    if (!row) status = 404;
    else out = json(row);
  } else if (req.method === 'PATCH' && parts[0] === 'devices') {
    const b = await body(req);
    const row = patch.get(b.groupTag, STATUS.indexOf(b.state.deviceImportStatus), parts[1]) as Row;
    out = json(row);
  } else if (req.method === 'GET' && parts[0] === 'uploads') {
    out = { value: (list.all(parts[1], url.searchParams.get('groupTag'), Number(url.searchParams.get('top') ?? 50)) as Row[]).map(json) };
  } else if (req.method === 'POST' && parts[0] === 'uploads') {
    const b = await body(req);
    const id = randomUUID();
    insertUpload.run(id, Date.now());
    out = { id, deviceIdentities: insertMany(id, b.deviceIdentities ?? []).map(json) };
    status = 201;
  } else if (req.method === 'POST' && parts[0] === 'import') {
    const b = await body(req);
    out = { value: insertMany(null, b.importedWindowsAutopilotDeviceIdentities).map(json) };
  } else status = 404;
  const text = out === undefined ? '' : JSON.stringify(out);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

createServer((req, res) => void handle(req, res)).listen(Number(port), '127.0.0.1', () => console.log(`raw bound listening on ${port}`));
