import JSON5 from 'json5';
import { badRequest } from './errors';

/** JSON nesting allowed in a request body (System.Text.Json's default). Deeper bodies overflowed the stack in payload validation (a 500). */
export const MAX_BODY_DEPTH = 64;

/** 400 when a parsed body nests deeper than {@link MAX_BODY_DEPTH}. */
export function checkDepth(value: unknown): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth > MAX_BODY_DEPTH) throw badRequest(`The request body nests deeper than ${MAX_BODY_DEPTH} levels.`);
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
}

/** A JSON body; Graph also takes lenient JSON (member names without quotes, as the community PowerShell module sends), read by json5. */
export function parseJsonBody(raw: Buffer): unknown {
  const text = raw.toString('utf8').replace(/^\uFEFF/, '');
  try {
    return JSON.parse(text);
  } catch (err) {
    try {
      return JSON5.parse(text);
    } catch {
      throw badRequest(`The request body is not valid JSON: ${(err as Error).message}.`);
    }
  }
}
