/** Replaces exactly one occurrence, so a mutation that silently matches nothing cannot make a negative control pass. */
export function mutate(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`mutation anchor must occur exactly once: ${from}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}
