import { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import { Config } from '../config';

/**
 * The origin in @odata.context, @odata.nextLink, Location and the OpenAPI server URL: PUBLIC_URL when set (behind a
 * proxy), else the one the client reached — https when the request came over TLS, with its Host header (or the
 * configured host and port for an HTTP/1.0 client that sends none).
 */
export function publicOrigin(config: Pick<Config, 'publicUrl' | 'host' | 'port'>, req: IncomingMessage): string {
  if (config.publicUrl) return config.publicUrl;
  const scheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  return `${scheme}://${req.headers.host ?? `${config.host}:${config.port}`}`;
}
