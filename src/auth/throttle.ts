import { ODataError } from '../odata/errors';
import type { Rate } from '../config';
import type { Authenticate } from './caller';

/** Token buckets per key: each holds `count` tokens and refills continuously at count/seconds per second. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: Rate,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Takes a token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    const now = this.now();
    const perMs = this.rate.count / (this.rate.seconds * 1000);
    const bucket = this.buckets.get(key) ?? { tokens: this.rate.count, at: now };
    bucket.tokens = Math.min(this.rate.count, bucket.tokens + (now - bucket.at) * perMs);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / perMs / 1000;
  }
}

/**
 * Per-tenant throttling after authentication (SPEC §4): over the limit → 429 TooManyRequests with Retry-After.
 * Buckets live in each instance's memory; several instances each apply the limit (documented in the README).
 */
export function withThrottling(authenticate: Authenticate, limits: { reads: Rate; writes: Rate }): Authenticate {
  const reads = new TokenBuckets(limits.reads);
  const writes = new TokenBuckets(limits.writes);
  return async (req, write) => {
    const caller = await authenticate(req, write);
    const wait = (write ? writes : reads).take(caller.tenantId);
    if (wait > 0) {
      const retryAfter = Math.max(1, Math.ceil(wait));
      throw new ODataError('TooManyRequests', `Too many ${write ? 'write' : 'read'} requests for this tenant; retry after ${retryAfter} s.`).withHeader(
        'Retry-After',
        String(retryAfter),
      );
    }
    return caller;
  };
}
