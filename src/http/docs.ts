import { readFileSync } from 'node:fs';
import { IncomingMessage } from 'node:http';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Config } from '../config';
import { methodNotAllowed, ODataError } from '../odata/errors';
import { openApiDocument, openApiJson } from './openapi';
import { publicOrigin } from './origin';

/** A response of the API page or the OpenAPI document. */
export interface PageReply {
  status: number;
  headers: Record<string, string>;
  body?: string | Buffer;
}

/** Answers a request for the API page or the OpenAPI document, or returns undefined: the request is not for them. */
export type DocsHandler = (req: IncomingMessage, pathname: string, method: string) => PageReply | undefined;

export const DOCS_PATH = '/docs';

// swagger-ui-dist is found, never required: its index loads the 1.8 MB bundle into Node, and the framework test pins
// that no swagger-ui module is loaded into the service.
const SWAGGER_UI_DIR = dirname(require.resolve('swagger-ui-dist/package.json'));
const SWAGGER_UI_VERSION = (JSON.parse(readFileSync(join(SWAGGER_UI_DIR, 'package.json'), 'utf8')) as { version: string }).version;
/** The files of swagger-ui-dist the page uses, and nothing else of that folder. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

interface Asset {
  body: Buffer;
  gzip?: Buffer;
}
const assets = new Map<string, Asset>();

/** Read on first use and kept: the page costs no memory until someone opens it. */
function asset(name: string): Asset {
  let found = assets.get(name);
  if (!found) {
    const body = readFileSync(join(SWAGGER_UI_DIR, name));
    found = { body, gzip: ASSETS[name].startsWith('image/') ? undefined : gzipSync(body) };
    assets.set(name, found);
  }
  return found;
}

const PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Windows Autopilot device imports — API</title>
<link rel="stylesheet" href="${DOCS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="${DOCS_PATH}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="${DOCS_PATH}/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${DOCS_PATH}/swagger-ui-bundle.js"></script>
<script src="${DOCS_PATH}/docs.js"></script>
</body>
</html>
`;

/**
 * Swagger UI over the service's OpenAPI document; the token a person enters is kept across reloads (persistAuthorization).
 * No deepLinking: with it, Swagger UI logs a deprecation error on every reload of a link to an operation.
 */
function initScript(openApiPath: string): string {
  return `window.ui = SwaggerUIBundle({
  url: ${JSON.stringify(openApiPath)},
  dom_id: '#swagger-ui',
  persistAuthorization: true,
  displayRequestDuration: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;
}

/**
 * `GET /docs` (Swagger UI from swagger-ui-dist, served from node_modules: no CDN) and `GET {root}/$openapi` (the
 * OpenAPI document odata-openapi generates from the served CSDL, made here, at start). Neither needs a token.
 */
export function createDocs(config: Pick<Config, 'basePath' | 'publicUrl' | 'host' | 'port'>): DocsHandler {
  openApiDocument();
  const openApiPath = `${config.basePath}/$openapi`;
  const script = initScript(openApiPath);
  // Try-it-out calls the server in the OpenAPI document: this origin, or PUBLIC_URL when the service sits behind a proxy.
  const connect = ["'self'", ...(config.publicUrl ? [config.publicUrl] : [])].join(' ');
  const pageHeaders = {
    'Content-Security-Policy':
      `default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; ` +
      `connect-src ${connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-cache',
  };

  return (req, pathname, method) => {
    const isOpenApi = pathname.toLowerCase() === openApiPath.toLowerCase();
    const isDocs = pathname === DOCS_PATH || pathname.startsWith(`${DOCS_PATH}/`);
    if (!isOpenApi && !isDocs) return undefined;
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method, ['GET', 'HEAD']);

    if (isOpenApi) {
      const serviceRoot = `${publicOrigin(config, req)}${config.basePath}`;
      return { status: 200, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' }, body: openApiJson(serviceRoot) };
    }
    const name = pathname.slice(DOCS_PATH.length + 1);
    if (name === '' || name === 'index.html') {
      return { status: 200, headers: { ...pageHeaders, 'Content-Type': 'text/html; charset=utf-8' }, body: PAGE };
    }
    if (name === 'docs.js') {
      return { status: 200, headers: { ...pageHeaders, 'Content-Type': 'text/javascript; charset=utf-8' }, body: script };
    }
    if (!Object.hasOwn(ASSETS, name)) {
      throw new ODataError('ResourceNotFound', `Nothing is served at '${pathname.slice(0, 100)}'; the API page is '${DOCS_PATH}'.`);
    }
    const etag = `W/"swagger-ui-dist-${SWAGGER_UI_VERSION}"`; // weak: the same for the gzip and the plain body
    const headers: Record<string, string> = {
      'Content-Type': ASSETS[name],
      'Cache-Control': 'no-cache',
      ETag: etag,
      'X-Content-Type-Options': 'nosniff',
      Vary: 'Accept-Encoding',
    };
    if (req.headers['if-none-match'] === etag) return { status: 304, headers };
    const file = asset(name);
    if (file.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      return { status: 200, headers: { ...headers, 'Content-Encoding': 'gzip' }, body: file.gzip };
    }
    return { status: 200, headers, body: file.body };
  };
}
