import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { startService, TestService } from './support/service';

/** GET /docs: Swagger UI from swagger-ui-dist, served by the service itself (no CDN), over /beta/$openapi. */
describe('GET /docs', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(() => service.close());

  it('is an HTML page, needing no token, whose scripts and styles all come from the service', async () => {
    // act
    const page = await service.get('/docs', { anonymous: true });
    const init = await service.get('/docs/docs.js', { anonymous: true });

    // assert: every asset it names is local and answers; nothing points at another host
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(assets).toEqual(['/docs/swagger-ui.css', '/docs/favicon-32x32.png', '/docs/favicon-16x16.png', '/docs/swagger-ui-bundle.js', '/docs/docs.js']);
    for (const asset of assets) expect([asset, (await service.get(asset, { anonymous: true })).status]).toEqual([asset, 200]);
    expect(page.text + init.text).not.toMatch(/https?:\/\//);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(init.text).toContain('url: "/beta/$openapi"');
    expect(init.text).toContain('persistAuthorization: true');
    expect(init.text).toContain('validatorUrl: null');
  });

  it('serves swagger-ui-dist with its content types, gzip when asked, and 304 for a cached copy', async () => {
    // act
    const css = await service.get('/docs/swagger-ui.css', { anonymous: true });
    const gzipped = await raw('/docs/swagger-ui-bundle.js', { 'Accept-Encoding': 'gzip' });
    const revalidated = await service.get('/docs/swagger-ui-bundle.js', { anonymous: true, headers: { 'If-None-Match': gzipped.headers.etag! } });
    const icon = await service.get('/docs/favicon-32x32.png', { anonymous: true });

    // assert
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(css.text).toContain('.swagger-ui');
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gzipped.body).toString()).toContain('SwaggerUIBundle');
    expect(revalidated.status).toBe(304);
    expect(icon.headers.get('content-type')).toBe('image/png');
  });

  it('answers anything else under /docs with Graph errors', async () => {
    // act: an unknown file, a file of swagger-ui-dist the page does not use, a way out of the folder, a write
    const unknown = await service.get('/docs/nope.js', { anonymous: true });
    const unused = await service.get('/docs/swagger-initializer.js', { anonymous: true }); // points at the petstore
    const outside = await raw('/docs/..%2Fpackage.json');
    const sourceMap = await service.get('/docs/swagger-ui-bundle.js.map', { anonymous: true });
    const post = await service.request('POST', '/docs', { anonymous: true, body: {} });

    // assert
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'ResourceNotFound', message: "Nothing is served at '/docs/nope.js'; the API page is '/docs'." });
    expect(unused.status).toBe(404);
    expect(outside.status).toBe(404);
    expect(JSON.parse(outside.body.toString()).error.code).toBe('ResourceNotFound');
    expect(sourceMap.status).toBe(404);
    expect(post.status).toBe(405);
    expect(post.body.error.code).toBe('MethodNotAllowed');
  });

  /** A request exactly as written (fetch would normalise the path and decompress the body). */
  function raw(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | undefined>; body: Buffer }> {
    const { port } = new URL(service.origin);
    return new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers as Record<string, string>, body: Buffer.concat(chunks) }));
      })
        .on('error', reject)
        .end();
    });
  }
});
