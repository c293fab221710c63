import { EntityRecord } from './binding';
import { ComplexType, EntityType, StructuralProperty } from './model';

/**
 * Response payloads: a record → the JSON object a client sees. Only properties declared in the CSDL are written
 * (a projection, never the table), in the type's document order, with `@odata.type` in `#` form on entities and on
 * complex values, as Graph does.
 */
export interface SerializeOptions {
  /** `$select`ed property names; undefined = all. */
  select?: ReadonlySet<string>;
  /** odata.metadata=none: no control information at all. */
  noMetadata?: boolean;
}

/** Edm.DateTimeOffset without a declared Precision is whole seconds (CSDL §7.2.3). */
export function formatDateTimeOffset(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function valueToJson(property: StructuralProperty, value: unknown, options: SerializeOptions): unknown {
  if (value === null || value === undefined) return null;
  const type = property.type;
  if (type.kind === 'enum') return type.names.get(value as number) ?? `${value as number}`;
  if (type.kind === 'complex') return complexToJson(type, value as Record<string, unknown>, options);
  switch (type.name) {
    case 'Edm.Binary':
      return (value as Buffer).toString('base64');
    case 'Edm.DateTimeOffset':
      return formatDateTimeOffset(value as number);
    default:
      return value;
  }
}

function complexToJson(type: ComplexType, value: Record<string, unknown>, options: SerializeOptions) {
  const out: Record<string, unknown> = options.noMetadata ? {} : { '@odata.type': `#${type.qualifiedName}` };
  for (const member of type.properties.values()) out[member.name] = valueToJson(member, value[member.name], options);
  return out;
}

export function entityToJson(
  type: EntityType,
  record: EntityRecord,
  etag: string | undefined,
  options: SerializeOptions = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!options.noMetadata) {
    out['@odata.type'] = `#${type.qualifiedName}`;
    if (etag) out['@odata.etag'] = etag;
  }
  for (const property of type.properties.values()) {
    if (options.select && !options.select.has(property.name) && !type.key.includes(property.name)) continue;
    out[property.name] = valueToJson(property, record[property.name], options);
  }
  return out;
}
