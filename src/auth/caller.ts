import { IncomingHttpHeaders } from 'node:http';

/** Who is calling: the tenant every query is scoped by. Resolved per request by `authenticate`. */
export interface Caller {
  tenantId: string;
}

/** Turns a request (its headers: a socket's or a batch part's) into a Caller or throws a 401/403 ODataError. `write` is true for methods that change data. */
export type Authenticate = (req: { headers: IncomingHttpHeaders }, write: boolean) => Promise<Caller>;

/** No authentication: everything belongs to tenant `default`. */
export const anonymous: Authenticate = () => Promise.resolve({ tenantId: 'default' });
