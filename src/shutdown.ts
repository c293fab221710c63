import { Server, ServerResponse } from 'node:http';

/**
 * Makes a stopping server close each connection as soon as its last response is sent, so SIGTERM ends the process
 * when the last request in flight is answered. Without it, a keep-alive connection that was busy at the signal stays
 * open (and keeps server.close() waiting) until its keep-alive timeout. Call before any other 'request' listener;
 * the returned function starts the drain (call it with server.close()).
 */
export function drainOnShutdown(server: Server): () => void {
  const open = new Set<ServerResponse>();
  let draining = false;
  const closeWhenDone = (res: ServerResponse) => {
    // A response not yet started says so; one already under way has its connection closed once it is sent.
    if (!res.headersSent) res.setHeader('Connection', 'close');
    else if (res.writableFinished) setImmediate(() => server.closeIdleConnections());
    else res.once('finish', () => server.closeIdleConnections());
  };
  server.prependListener('request', (_req, res: ServerResponse) => {
    if (draining) return closeWhenDone(res);
    open.add(res);
    res.once('close', () => open.delete(res));
  });
  return () => {
    draining = true;
    for (const res of open) closeWhenDone(res);
    open.clear();
    server.closeIdleConnections();
  };
}
