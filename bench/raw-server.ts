import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import Database from 'better-sqlite3';
import { Pool } from 'pg';

/**
 * The bound: the benchmarked operations as plainly and quickly as node:http and the database driver allow — prepared
 * statements, one transaction per write, one multi-row INSERT … RETURNING per bulk request; no validation, no auth,
 * no OData. The service is measured as a ratio to it, on the same engine.
 *
 *   node raw-server.js <port> <sqlite file | postgres://…> [--process]
 *
 * SQLite: better-sqlite3, WAL, synchronous=NORMAL (what the benchmark sets on the service), the service's page cache.
 * PostgreSQL: a pg Pool of 10 (the service's DB_POOL_SIZE), named prepared statements, tables in the schema the URL's
 * `options=-c search_path=…` names. With `--process`, devices stored by the import and upload endpoints are processed
 * as the service's import worker does (802 for a missing or short hash, 806/808 for a serial already registered,
 * else a registered device and `complete`), 500 per transaction, from the moment they are stored.
 *
 * The tables carry the tenant column and those of the service's indexes that these queries use: the scope and key
 * (tenant, upload, id), the filtered list (tenant, upload, groupTag), the count by status (tenant, upload, status),
 * the worker's queue (storedAt, id where the status is still to do) and the registry's serial number.
 */
const [port, target, mode] = process.argv.slice(2);
const PG = /^postgres(ql)?:\/\//.test(target ?? '');
const PROCESS = mode === '--process';
/** No auth here: every request is the benchmark tenant's. */
const TENANT = 'bench';
const STATUS = ['unknown', 'pending', 'partial', 'complete', 'error'];
const COMPLETE = 3;
const ERROR = 4;
const MIN_HASH_BYTES = 64;
const BATCH = 500;

type Row = Record<string, any>;
interface NewDevice {
  orderIdentifier?: string;
  groupTag?: string;
  serialNumber?: string;
  productKey?: string;
  hardwareIdentifier?: string;
  assignedUserPrincipalName?: string;
}

/** What each engine does; SQLite answers synchronously. */
interface Engine {
  get(id: string): Row | undefined | Promise<Row | undefined>;
  patch(id: string, groupTag: string, status: number): Row | undefined | Promise<Row | undefined>;
  list(uploadId: string, groupTag: string, top: number): Row[] | Promise<Row[]>;
  /** The live collection (devices of no upload) whose serial number contains `text`, in key order. */
  contains(text: string, top: number): Row[] | Promise<Row[]>;
  /** A new upload and its devices, in one transaction. */
  upload(devices: NewDevice[]): { id: string; rows: Row[] } | Promise<{ id: string; rows: Row[] }>;
  /** New devices of the live collection, in one transaction. */
  import(devices: NewDevice[]): Row[] | Promise<Row[]>;
  /** Live devices in an import status. */
  count(status: number): number | Promise<number>;
  registered(): number | Promise<number>;
  /** One batch of the import worker; returns how many devices it processed (0: none to do). */
  processBatch(): number | Promise<number>;
}

/** Columns a new device binds, in order (status unknown, error code 0 and version 1 are literals of the statement). */
const DEVICE_COLUMNS = ['id', 'tenant_id', 'upload_id', 'order_identifier', 'group_tag', 'serial_number', 'product_key', 'hardware_identifier', 'upn', 'stored_at'];
const deviceValues = (uploadId: string | null, d: NewDevice, storedAt: number): unknown[] => [
  randomUUID(),
  TENANT,
  uploadId,
  d.orderIdentifier ?? null,
  d.groupTag ?? null,
  d.serialNumber ?? null,
  d.productKey ?? null,
  d.hardwareIdentifier ? Buffer.from(d.hardwareIdentifier, 'base64') : null,
  d.assignedUserPrincipalName ?? null,
  storedAt,
];
/** Columns of a registered device that come from the imported one; the rest are the table's defaults. */
const REGISTERED_COLUMNS = ['id', 'tenant_id', 'serial_number', 'group_tag', 'product_key', 'purchase_order_identifier', 'user_principal_name', 'addressable_user_name', 'azure_active_directory_device_id', 'azure_ad_device_id'];

/** Tables and indexes, the same on both engines apart from types (`text` is C-collated on PostgreSQL, as the service's). */
function schema(text: string, binary: string): string {
  const min = '-62135596800000';
  return `CREATE TABLE IF NOT EXISTS upload (id ${text} PRIMARY KEY, tenant_id ${text} NOT NULL, created bigint NOT NULL, status integer NOT NULL, version integer NOT NULL);
  CREATE TABLE IF NOT EXISTS device (id ${text} PRIMARY KEY, tenant_id ${text} NOT NULL, upload_id ${text}, order_identifier ${text}, group_tag ${text},
    serial_number ${text}, product_key ${text}, import_id ${text}, hardware_identifier ${binary}, status integer, registration_id ${text}, error_code integer,
    error_name ${text}, upn ${text}, version integer NOT NULL, stored_at bigint NOT NULL);
  CREATE INDEX IF NOT EXISTS ix_device_scope_id ON device (tenant_id, upload_id, id);
  CREATE INDEX IF NOT EXISTS ix_device_scope_group ON device (tenant_id, upload_id, group_tag);
  CREATE INDEX IF NOT EXISTS ix_device_scope_status ON device (tenant_id, upload_id, status);
  CREATE INDEX IF NOT EXISTS ix_device_due ON device (stored_at, id) WHERE status IN (0, 1);
  CREATE TABLE IF NOT EXISTS registered (id ${text} PRIMARY KEY, tenant_id ${text} NOT NULL,
    addressable_user_name ${text} NOT NULL DEFAULT '', azure_active_directory_device_id ${text} NOT NULL, azure_ad_device_id ${text} NOT NULL,
    deployment_profile_assigned_date_time bigint NOT NULL DEFAULT ${min}, deployment_profile_assignment_detailed_status integer NOT NULL DEFAULT 0,
    deployment_profile_assignment_status integer NOT NULL DEFAULT 4, device_account_password ${text} NOT NULL DEFAULT '',
    device_account_upn ${text} NOT NULL DEFAULT '', device_friendly_name ${text} NOT NULL DEFAULT '', display_name ${text} NOT NULL DEFAULT '',
    enrollment_state integer NOT NULL DEFAULT 4, group_tag ${text} NOT NULL DEFAULT '', last_contacted_date_time bigint NOT NULL DEFAULT ${min},
    managed_device_id ${text} NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000', manufacturer ${text} NOT NULL DEFAULT '',
    model ${text} NOT NULL DEFAULT '', product_key ${text} NOT NULL DEFAULT '', purchase_order_identifier ${text} NOT NULL DEFAULT '',
    remediation_state integer NOT NULL DEFAULT 0, remediation_state_last_modified_date_time bigint NOT NULL DEFAULT ${min},
    resource_name ${text} NOT NULL DEFAULT '', serial_number ${text} NOT NULL DEFAULT '', sku_number ${text} NOT NULL DEFAULT '',
    system_family ${text} NOT NULL DEFAULT '', userless_enrollment_status integer NOT NULL DEFAULT 0, user_principal_name ${text} NOT NULL DEFAULT '',
    version integer NOT NULL DEFAULT 1);
  CREATE INDEX IF NOT EXISTS ix_registered_serial ON registered (serial_number);`;
}

/** `(p, p, …), (p, p, …)` for `rows` rows of `columns` placeholders, numbered from 1 by `placeholder`; `extra` appended to each row. */
function tuples(rows: number, columns: number, placeholder: (n: number) => string, extra = ''): string {
  const out: string[] = [];
  for (let r = 0; r < rows; r++) {
    const row: string[] = [];
    for (let c = 1; c <= columns; c++) row.push(placeholder(r * columns + c));
    out.push(`(${row.join(', ')}${extra})`);
  }
  return out.join(', ');
}

const insertDevicesSql = (rows: number, placeholder: (n: number) => string) =>
  `INSERT INTO device (${DEVICE_COLUMNS.join(', ')}, status, error_code, version) VALUES ${tuples(rows, DEVICE_COLUMNS.length, placeholder, ', 0, 0, 1')} RETURNING *`;
const CLAIM_SQL = `SELECT id, tenant_id, serial_number, hardware_identifier, group_tag, product_key, order_identifier, upn FROM device
  WHERE status IN (0, 1) ORDER BY stored_at, id LIMIT ${BATCH}`;

/** A batch's decisions, the same rule as the service's worker: the first device of a serial in a batch wins. */
function decide(rows: Row[], registry: Map<string, Set<string>>) {
  const registrations: unknown[][] = [];
  const outcomes: { id: string; status: number; registrationId: string | null; code: number; name: string | null }[] = [];
  for (const row of rows) {
    const serial: string | null = row.serial_number || null;
    const tenants = serial === null ? undefined : registry.get(serial);
    const hash = row.hardware_identifier as Buffer | null;
    if (!hash || hash.length < MIN_HASH_BYTES) outcomes.push({ id: row.id, status: ERROR, registrationId: null, code: 802, name: 'InvalidZtdHardwareHash' });
    else if (tenants?.has(row.tenant_id)) outcomes.push({ id: row.id, status: ERROR, registrationId: null, code: 806, name: 'ZtdDeviceAlreadyAssigned' });
    else if (tenants && tenants.size > 0) outcomes.push({ id: row.id, status: ERROR, registrationId: null, code: 808, name: 'ZtdDeviceAssignedToOtherTenant' });
    else {
      const id = randomUUID();
      const entra = randomUUID();
      const upn = row.upn ?? '';
      registrations.push([id, row.tenant_id, serial ?? '', row.group_tag ?? '', row.product_key ?? '', row.order_identifier ?? '', upn, upn, entra, entra]);
      if (serial !== null) registry.set(serial, new Set([row.tenant_id]));
      outcomes.push({ id: row.id, status: COMPLETE, registrationId: id, code: 0, name: null });
    }
  }
  return { registrations, outcomes };
}

function registryOf(rows: Row[]): Map<string, Set<string>> {
  const registry = new Map<string, Set<string>>();
  for (const r of rows) {
    if (!registry.has(r.serial_number)) registry.set(r.serial_number, new Set());
    registry.get(r.serial_number)!.add(r.tenant_id);
  }
  return registry;
}

const serialsOf = (rows: Row[]) => [...new Set(rows.map((r) => r.serial_number as string | null).filter((s): s is string => !!s))];

function sqliteEngine(file: string): Engine {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -16384');
  db.exec(schema('TEXT', 'BLOB'));
  // better-sqlite3's SQLite allows 32766 bound parameters per statement.
  const maxRows = Math.floor(32766 / DEVICE_COLUMNS.length);
  const cached = new Map<string, Database.Statement>();
  const prepared = (key: string, sql: () => string) => {
    let s = cached.get(key);
    if (!s) cached.set(key, (s = db.prepare(sql())));
    return s;
  };
  const insertDevices = (n: number) => prepared(`insert ${n}`, () => insertDevicesSql(n, () => '?'));
  insertDevices(BATCH);
  const get = db.prepare('SELECT * FROM device WHERE tenant_id = ? AND id = ?');
  const patch = db.prepare('UPDATE device SET group_tag = ?, status = ?, version = version + 1 WHERE tenant_id = ? AND id = ? RETURNING *');
  const list = db.prepare('SELECT * FROM device WHERE tenant_id = ? AND upload_id = ? AND group_tag = ? ORDER BY id LIMIT ?');
  // The service's contains(): instr(serialNumber, ?) - 1 >= 0 (case-sensitive, no wildcards).
  const contains = db.prepare('SELECT * FROM device WHERE tenant_id = ? AND upload_id IS NULL AND instr(serial_number, ?) > 0 ORDER BY id LIMIT ?');
  const count = db.prepare('SELECT count(*) AS n FROM device WHERE tenant_id = ? AND upload_id IS NULL AND status = ?').pluck();
  const registered = db.prepare('SELECT count(*) AS n FROM registered WHERE tenant_id = ?').pluck();
  const insertUpload = db.prepare('INSERT INTO upload (id, tenant_id, created, status, version) VALUES (?, ?, ?, 1, 1)');
  const claim = db.prepare(CLAIM_SQL);
  const lookup = (n: number) => prepared(`lookup ${n}`, () => `SELECT tenant_id, serial_number FROM registered WHERE serial_number IN (${Array(n).fill('?').join(', ')})`);
  const register = (n: number) =>
    prepared(`register ${n}`, () => `INSERT INTO registered (${REGISTERED_COLUMNS.join(', ')}) VALUES ${tuples(n, REGISTERED_COLUMNS.length, () => '?')}`);
  const outcome = db.prepare('UPDATE device SET status = ?, registration_id = ?, error_code = ?, error_name = ?, version = version + 1 WHERE id = ?');

  const insert = (uploadId: string | null, devices: NewDevice[]): Row[] => {
    const now = Date.now();
    const rows: Row[] = [];
    for (let i = 0; i < devices.length; i += maxRows) {
      const chunk = devices.slice(i, i + maxRows);
      rows.push(...(insertDevices(chunk.length).all(...chunk.flatMap((d) => deviceValues(uploadId, d, now))) as Row[]));
    }
    return rows;
  };
  const upload = db.transaction((devices: NewDevice[]) => {
    const id = randomUUID();
    insertUpload.run(id, TENANT, Date.now());
    return { id, rows: insert(id, devices) };
  });
  const importChunks = db.transaction((devices: NewDevice[]) => insert(null, devices));
  // One statement is a transaction by itself (and, outside BEGIN … COMMIT, needs no statement journal).
  const importDevices = (devices: NewDevice[]) => (devices.length <= maxRows ? insert(null, devices) : importChunks.immediate(devices));
  const processBatch = db.transaction((): number => {
    const rows = claim.all() as Row[];
    if (rows.length === 0) return 0;
    const serials = serialsOf(rows);
    const registry = registryOf(serials.length ? (lookup(serials.length).all(...serials) as Row[]) : []);
    const { registrations, outcomes } = decide(rows, registry);
    if (registrations.length) register(registrations.length).run(...registrations.flat());
    for (const o of outcomes) outcome.run(o.status, o.registrationId, o.code, o.name, o.id);
    return rows.length;
  });
  return {
    get: (id) => get.get(TENANT, id) as Row | undefined,
    // all(), not get(): a statement reset before it ran to the end skips SQLite's WAL hook, so the WAL would never be
    // checkpointed by PATCHes alone (it grew to hundreds of MB, and the next write stalled for seconds checkpointing it).
    patch: (id, groupTag, status) => (patch.all(groupTag, status, TENANT, id) as Row[])[0],
    list: (uploadId, groupTag, top) => list.all(TENANT, uploadId, groupTag, top) as Row[],
    contains: (text, top) => contains.all(TENANT, text, top) as Row[],
    upload: (devices) => upload.immediate(devices),
    import: importDevices,
    count: (status) => count.get(TENANT, status) as number,
    registered: () => registered.get(TENANT) as number,
    processBatch: () => processBatch.immediate(),
  };
}

function postgresEngine(url: string): Engine {
  const pool = new Pool({ connectionString: url, max: 10 });
  // PostgreSQL allows 65535 bound parameters per statement.
  const maxRows = Math.floor(65535 / DEVICE_COLUMNS.length);
  const $ = (n: number) => `$${n}`;
  const insertSql = new Map<number, string>();
  const insertDevices = (n: number, values: unknown[]) => {
    let text = insertSql.get(n);
    if (!text) insertSql.set(n, (text = insertDevicesSql(n, $)));
    return { name: `insert_devices_${n}`, text, values };
  };
  insertSql.set(BATCH, insertDevicesSql(BATCH, $));
  const one = async (name: string, text: string, values: unknown[]) => (await pool.query({ name, text, values })).rows[0] as Row | undefined;
  const all = async (name: string, text: string, values: unknown[]) => (await pool.query({ name, text, values })).rows as Row[];

  /** `fn` in one transaction on one pooled connection. */
  async function transaction<T>(fn: (query: (q: { name: string; text: string; values?: unknown[] }) => Promise<Row[]>) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(async (q) => (await client.query(q)).rows as Row[]);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
  async function insert(query: (q: { name: string; text: string; values?: unknown[] }) => Promise<Row[]>, uploadId: string | null, devices: NewDevice[]) {
    const now = Date.now();
    const rows: Row[] = [];
    for (let i = 0; i < devices.length; i += maxRows) {
      const chunk = devices.slice(i, i + maxRows);
      rows.push(...(await query(insertDevices(chunk.length, chunk.flatMap((d) => deviceValues(uploadId, d, now))))));
    }
    return rows;
  }

  return {
    get: (id) => one('get', 'SELECT * FROM device WHERE tenant_id = $1 AND id = $2', [TENANT, id]),
    patch: (id, groupTag, status) =>
      one('patch', 'UPDATE device SET group_tag = $1, status = $2, version = version + 1 WHERE tenant_id = $3 AND id = $4 RETURNING *', [groupTag, status, TENANT, id]),
    list: (uploadId, groupTag, top) =>
      all('list', 'SELECT * FROM device WHERE tenant_id = $1 AND upload_id = $2 AND group_tag = $3 ORDER BY id LIMIT $4', [TENANT, uploadId, groupTag, top]),
    // The service's contains(): strpos(serialNumber, $n) - 1 >= 0 (case-sensitive, no wildcards).
    contains: (text, top) =>
      all('contains', 'SELECT * FROM device WHERE tenant_id = $1 AND upload_id IS NULL AND strpos(serial_number, $2) > 0 ORDER BY id LIMIT $3', [TENANT, text, top]),
    upload: (devices) =>
      transaction(async (query) => {
        const id = randomUUID();
        await query({ name: 'insert_upload', text: 'INSERT INTO upload (id, tenant_id, created, status, version) VALUES ($1, $2, $3, 1, 1)', values: [id, TENANT, Date.now()] });
        return { id, rows: await insert(query, id, devices) };
      }),
    import: async (devices) => {
      if (devices.length > maxRows) return transaction((query) => insert(query, null, devices));
      // One statement: a transaction by itself.
      const now = Date.now();
      return (await pool.query(insertDevices(devices.length, devices.flatMap((d) => deviceValues(null, d, now))))).rows as Row[];
    },
    count: async (status) =>
      Number((await one('count', 'SELECT count(*) AS n FROM device WHERE tenant_id = $1 AND upload_id IS NULL AND status = $2', [TENANT, status]))!.n),
    registered: async () => Number((await one('registered', 'SELECT count(*) AS n FROM registered WHERE tenant_id = $1', [TENANT]))!.n),
    processBatch: () =>
      transaction(async (query) => {
        const rows = await query({ name: 'claim', text: CLAIM_SQL });
        if (rows.length === 0) return 0;
        const serials = serialsOf(rows);
        const registry = registryOf(
          serials.length ? await query({ name: 'lookup', text: 'SELECT tenant_id, serial_number FROM registered WHERE serial_number = ANY($1::text[])', values: [serials] }) : [],
        );
        const { registrations, outcomes } = decide(rows, registry);
        if (registrations.length) {
          // One statement for the batch, one text array per column.
          const columns = REGISTERED_COLUMNS.map((_, c) => registrations.map((r) => r[c]));
          await query({
            name: 'register',
            text: `INSERT INTO registered (${REGISTERED_COLUMNS.join(', ')}) SELECT * FROM unnest(${REGISTERED_COLUMNS.map((_, c) => `$${c + 1}::text[]`).join(', ')})`,
            values: columns,
          });
        }
        await query({
          name: 'outcomes',
          text: `UPDATE device d SET status = v.status, registration_id = v.registration_id, error_code = v.code, error_name = v.name, version = d.version + 1
            FROM unnest($1::text[], $2::int[], $3::text[], $4::int[], $5::text[]) AS v(id, status, registration_id, code, name) WHERE d.id = v.id`,
          values: [outcomes.map((o) => o.id), outcomes.map((o) => o.status), outcomes.map((o) => o.registrationId), outcomes.map((o) => o.code), outcomes.map((o) => o.name)],
        });
        return rows.length;
      }),
  };
}

async function open(): Promise<Engine> {
  if (!PG) return sqliteEngine(target);
  const pool = new Pool({ connectionString: target, max: 1 });
  await pool.query(schema('text COLLATE "C"', 'bytea'));
  await pool.end();
  return postgresEngine(target);
}

const json = (row: Row) => ({
  id: row.id,
  orderIdentifier: row.order_identifier,
  groupTag: row.group_tag,
  serialNumber: row.serial_number,
  productKey: row.product_key,
  importId: row.import_id,
  hardwareIdentifier: row.hardware_identifier ? (row.hardware_identifier as Buffer).toString('base64') : null,
  state: { deviceImportStatus: STATUS[row.status], deviceRegistrationId: row.registration_id, deviceErrorCode: row.error_code, deviceErrorName: row.error_name },
  assignedUserPrincipalName: row.upn,
});

function body(req: IncomingMessage): Promise<any> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined));
    req.on('error', reject);
  });
}

async function main() {
  const engine = await open();

  // The worker: runs while there is work, started by every insert; yields to requests between batches.
  let running = false;
  let again = false;
  const kick = () => {
    if (!PROCESS) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    void (async () => {
      try {
        for (;;) {
          again = false;
          const processed = await engine.processBatch();
          if (processed === 0 && !again) break;
          await new Promise((resolve) => setImmediate(resolve));
        }
      } catch (err) {
        console.error('import batch failed', err);
        process.exit(1);
      } finally {
        running = false;
      }
    })();
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url!, 'http://x');
    const parts = url.pathname.split('/').filter(Boolean);
    let out: unknown;
    let text: string | undefined;
    let status = 200;
    if (req.method === 'GET' && parts[0] === 'health') out = { status: 'ok' };
    else if (req.method === 'GET' && parts[0] === 'devices') {
      const row = await engine.get(parts[1]);
      if (!row) status = 404;
      else out = json(row);
    } else if (req.method === 'PATCH' && parts[0] === 'devices') {
      const b = await body(req);
      const row = await engine.patch(parts[1], b.groupTag, STATUS.indexOf(b.state.deviceImportStatus));
      if (!row) status = 404;
      else out = json(row);
    } else if (req.method === 'GET' && parts[0] === 'uploads') {
      out = { value: (await engine.list(parts[1], url.searchParams.get('groupTag')!, Number(url.searchParams.get('top') ?? 50))).map(json) };
    } else if (req.method === 'POST' && parts[0] === 'uploads') {
      const b = await body(req);
      const created = await engine.upload(b.deviceIdentities ?? []);
      kick();
      out = { id: created.id, deviceIdentities: created.rows.map(json) };
      status = 201;
    } else if (req.method === 'POST' && parts[0] === 'import') {
      const b = await body(req);
      const rows = await engine.import(b.importedWindowsAutopilotDeviceIdentities);
      kick();
      out = { value: rows.map(json) };
    } else if (req.method === 'GET' && parts[0] === 'live' && parts[1] === 'count') {
      text = String(await engine.count(STATUS.indexOf(url.searchParams.get('status') ?? 'complete')));
    } else if (req.method === 'GET' && parts[0] === 'live') {
      out = { value: (await engine.contains(url.searchParams.get('contains') ?? '', Number(url.searchParams.get('top') ?? 50))).map(json) };
    } else if (req.method === 'GET' && parts[0] === 'registered' && parts[1] === 'count') {
      text = String(await engine.registered());
    } else status = 404;
    text ??= out === undefined ? '' : JSON.stringify(out);
    res.writeHead(status, { 'Content-Type': out === undefined ? 'text/plain' : 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error(err);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  }).listen(Number(port), '127.0.0.1', () => console.log(`raw bound (${PG ? 'PostgreSQL' : 'SQLite'}${PROCESS ? ', processing imports' : ''}) listening on ${port}`));
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
