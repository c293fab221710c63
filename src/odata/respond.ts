import { etagOf, Stored } from '../db/scoped-table';
import { preconditionFailed } from './errors';
import { EntityType } from './model';
import { ODataRequest, Reply } from './request';
import { entityToJson } from './serialize';

/** Context URLs (JSON §4.5.1), entity and collection bodies, ETag preconditions and the Prefer: return rules. */

export function contextUrl(req: ODataRequest, path: string, options: { entity?: boolean; select?: ReadonlySet<string>; type?: EntityType } = {}) {
  let url = `${req.serviceRoot}/$metadata#${path}`;
  if (options.select && options.type) {
    const names = [...options.type.properties.keys()].filter((p) => options.select!.has(p) || options.type!.key.includes(p));
    url += `(${names.join(',')})`;
  }
  // A path without '/' names a singleton (loadModel refuses top-level entity sets): its context has no /$entity.
  return options.entity && path.includes('/') ? `${url}/$entity` : url;
}

export function entityJson(req: ODataRequest, type: EntityType, stored: Stored, select?: ReadonlySet<string>) {
  return entityToJson(type, { ...stored.record, id: stored.id }, etagOf(stored.version), { select, noMetadata: req.format.noMetadata });
}

export function withContext(req: ODataRequest, context: string, body: Record<string, unknown>): Record<string, unknown> {
  return req.format.noMetadata ? body : { '@odata.context': context, ...body };
}

/** A single entity (GET, and writes that return a representation). */
export function entityReply(req: ODataRequest, type: EntityType, stored: Stored, path: string, status = 200, extra: Record<string, unknown> = {}, select?: ReadonlySet<string>): Reply {
  const body = withContext(req, contextUrl(req, path, { entity: true, select, type }), { ...entityJson(req, type, stored, select), ...extra });
  return { status, json: body, headers: { ETag: etagOf(stored.version) } };
}

/** A write's reply: the entity (200/201) or, with Prefer: return=minimal, 204 and Preference-Applied. */
export function writeReply(req: ODataRequest, type: EntityType, stored: Stored, path: string, status: 200 | 201, location?: string, extra: Record<string, unknown> = {}): Reply {
  const headers: Record<string, string> = {};
  if (location) headers.Location = location;
  if (req.prefer.returnPreference === 'minimal') {
    if (location) headers['OData-EntityId'] = location;
    return { status: 204, headers: { ...headers, ETag: etagOf(stored.version), 'Preference-Applied': 'return=minimal' } };
  }
  const reply = entityReply(req, type, stored, path, status, extra);
  reply.headers = { ...reply.headers, ...headers };
  if (req.prefer.returnPreference === 'representation') reply.headers['Preference-Applied'] = 'return=representation';
  return reply;
}

/** Whether an If-Match / If-None-Match header lists `*` or the entity's ETag (weak comparison, RFC 9110 §8.8.3.2). */
function matches(header: string, stored: Stored): boolean {
  const current = etagOf(stored.version).replace(/^W\//, '');
  return header
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === '*' || t.replace(/^W\//, '') === current);
}

/** If-Match / If-None-Match on a write (Part 1 §8.2.4–8.2.5): a mismatch is 412 and changes nothing. */
export function checkWritePreconditions(req: ODataRequest, stored: Stored | undefined): void {
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined) {
    if (!stored) throw preconditionFailed('If-Match was given but the entity does not exist.');
    if (!matches(ifMatch, stored)) {
      throw preconditionFailed(`The entity has changed: its ETag is ${etagOf(stored.version)}, If-Match asked for ${ifMatch}.`);
    }
  }
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined && stored && matches(ifNoneMatch, stored)) throw preconditionFailed('If-None-Match matched the current entity.');
}

/** If-None-Match on a read: 304 when the client's copy is current. */
export function notModified(req: ODataRequest, stored: Stored): Reply | undefined {
  const header = req.headers['if-none-match'];
  if (header && matches(header, stored)) return { status: 304, headers: { ETag: etagOf(stored.version) } };
  return undefined;
}

/** A collection page: value, @odata.count (total of the filtered set) and @odata.nextLink (absolute). */
export function collectionReply(
  req: ODataRequest,
  type: EntityType,
  page: { items: Stored[]; count?: number; nextLink?: string },
  path: string,
  select?: ReadonlySet<string>,
  decorate?: (stored: Stored, json: Record<string, unknown>) => Record<string, unknown>,
  headers?: Record<string, string>,
): Reply {
  const body: Record<string, unknown> = {};
  if (!req.format.noMetadata) body['@odata.context'] = contextUrl(req, path, { select, type });
  if (page.count !== undefined) body['@odata.count'] = req.format.ieee754 ? String(page.count) : page.count;
  if (page.nextLink) body['@odata.nextLink'] = page.nextLink;
  body.value = page.items.map((stored) => {
    const json = entityJson(req, type, stored, select);
    return decorate ? decorate(stored, json) : json;
  });
  return { status: 200, json: body, headers };
}
