import { ODataError } from '../odata/errors';

/**
 * Opt-in simulation of Graph's bad days, for clients' resilience tests (what Microsoft's Dev Proxy does, here on a
 * stateful service): `FAULT_RATE` percent of data requests answered 429 or 503 with Retry-After, always before
 * anything is read or written, and `LATENCY_MS=min-max` added to every data request. Both are off by default.
 */
export interface Simulation {
  /** Percent of requests that fail (0–100). */
  faultRate: number;
  /** Added latency in ms, drawn uniformly from [min, max]. */
  latency?: { min: number; max: number };
}

/** Parses LATENCY_MS: `250` or `100-500`; undefined when unset. Throws a message for a bad value. */
export function parseLatency(raw: string | undefined): { min: number; max: number } | undefined {
  if (raw === undefined || raw === '') return undefined;
  const m = /^(\d+)(?:-(\d+))?$/.exec(raw.trim());
  if (!m) throw new Error(`LATENCY_MS must be milliseconds such as 200 or a range such as 100-500, got '${raw}'`);
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  if (max < min || max > 60000) throw new Error(`LATENCY_MS must be a range min-max with min ≤ max ≤ 60000, got '${raw}'`);
  return { min, max };
}

export function describeSimulation(s: Simulation): string | undefined {
  const parts: string[] = [];
  if (s.faultRate > 0) parts.push(`${s.faultRate}% of requests fail with 429/503 (FAULT_RATE)`);
  if (s.latency) parts.push(`${s.latency.min}-${s.latency.max} ms added latency (LATENCY_MS)`);
  return parts.length ? `Simulation on: ${parts.join('; ')}.` : undefined;
}

/** Waits the simulated latency, then maybe throws the simulated fault; `random` is injectable for tests. */
export async function simulate(s: Simulation, random: () => number = Math.random): Promise<void> {
  if (s.latency) {
    const ms = s.latency.min + Math.floor(random() * (s.latency.max - s.latency.min + 1));
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  }
  if (s.faultRate > 0 && random() * 100 < s.faultRate) {
    const throttled = random() < 0.5;
    const error = throttled
      ? new ODataError('TooManyRequests', 'Simulated throttling (FAULT_RATE): retry after the time in Retry-After.')
      : new ODataError('ServiceUnavailable', 'Simulated outage (FAULT_RATE): retry after the time in Retry-After.');
    throw error.withHeader('Retry-After', String(1 + Math.floor(random() * 2)));
  }
}
