import { createHash, randomUUID } from 'node:crypto';

/** Server-generated keys: random GUIDs, and name-based (v5) GUIDs for per-tenant singletons. */
export const newId = (): string => randomUUID();

const NAMESPACE_GUID = Buffer.from('6ba7b8119dad11d180b400c04fd430c8', 'hex'); // RFC 4122 URL namespace

export function nameBasedId(name: string): string {
  const hash = createHash('sha1').update(NAMESPACE_GUID).update(name).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
