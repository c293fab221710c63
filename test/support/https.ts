import { request } from 'node:https';

/**
 * `fetch` for a service on a self-signed certificate: node:https with that certificate as the only trusted root
 * (Node's global fetch takes no CA). Enough of fetch for the test helpers: method, headers, a string body.
 */
export function trustingFetch(ca: string | Buffer): (url: string, init?: { method?: string; headers?: Record<string, string>; body?: string }) => Promise<Response> {
  return (url, init = {}) =>
    new Promise((resolve, reject) => {
      const req = request(url, { method: init.method ?? 'GET', headers: init.headers, ca }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const one of Array.isArray(value) ? value : [value ?? '']) headers.append(name, one);
          }
          const status = res.statusCode ?? 0;
          const body = status === 204 || status === 304 || init.method === 'HEAD' ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, headers }));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(init.body);
    });
}
