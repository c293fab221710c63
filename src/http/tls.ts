import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, RequestListener, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { dirname, join, resolve } from 'node:path';

/** Where the service's certificate and key live. `selfSigned`: generated under the data directory by HTTPS=1. */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
  selfSigned: boolean;
}

/** A TLS setting that cannot work; `variable` is the environment variable to fix. */
export class TlsConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(message);
  }
}

/** The names the generated certificate is valid for: what a person on this machine types. */
export const SELF_SIGNED_NAMES = { dns: ['localhost'], ip: ['127.0.0.1', '::1'] };
const VALIDITY_DAYS = 365;
/** A generated certificate this close to expiry is replaced at start, so a running service does not outlive it. */
const RENEW_DAYS = 30;

/**
 * TLS from the environment: `TLS_CERT` + `TLS_KEY` (PEM files, read and checked now), or `HTTPS=1` (a self-signed
 * certificate kept in `dataDir`, made by `ensureSelfSignedCertificate`). Throws TlsConfigError naming the variable.
 */
export function tlsFromEnv(env: NodeJS.ProcessEnv, dataDir: string): TlsConfig | undefined {
  const https = env.HTTPS ?? '';
  if (!['', '0', '1', 'true', 'false'].includes(https)) throw new TlsConfigError('HTTPS', `HTTPS must be 1 or 0, got '${https}'`);
  const certFile = env.TLS_CERT || undefined;
  const keyFile = env.TLS_KEY || undefined;
  if (certFile && !keyFile) throw new TlsConfigError('TLS_KEY', 'TLS_KEY must be set with TLS_CERT (the PEM private key of the certificate)');
  if (keyFile && !certFile) throw new TlsConfigError('TLS_CERT', 'TLS_CERT must be set with TLS_KEY (the PEM certificate of the key)');
  if (certFile && keyFile) {
    checkPair(readPem('TLS_CERT', certFile), readPem('TLS_KEY', keyFile));
    return { certFile, keyFile, selfSigned: false };
  }
  if (https === '1' || https === 'true') {
    return { certFile: join(dataDir, 'tls-cert.pem'), keyFile: join(dataDir, 'tls-key.pem'), selfSigned: true };
  }
  return undefined;
}

function readPem(variable: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new TlsConfigError(variable, `${variable} cannot be read: '${file}': ${reason}`);
  }
}

/** Parses a PEM certificate and key and checks they belong together. */
function checkPair(certPem: string, keyPem: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    throw new TlsConfigError('TLS_CERT', 'TLS_CERT must be a PEM certificate file (-----BEGIN CERTIFICATE-----)');
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    const encrypted = /passphrase/i.test((err as Error).message);
    throw new TlsConfigError(
      'TLS_KEY',
      encrypted ? 'TLS_KEY is encrypted; give an unencrypted PEM private key' : 'TLS_KEY must be a PEM private key file (-----BEGIN PRIVATE KEY-----)',
    );
  }
  const publicDer = (k: ReturnType<typeof createPublicKey>) => k.export({ type: 'spki', format: 'der' });
  if (!publicDer(cert.publicKey).equals(publicDer(createPublicKey(key)))) {
    throw new TlsConfigError('TLS_KEY', 'TLS_KEY is not the private key of the certificate in TLS_CERT');
  }
  return cert;
}

export interface SelfSignedCertificate {
  /** Absolute path of the certificate: what NODE_EXTRA_CA_CERTS and `curl --cacert` take. */
  certFile: string;
  fingerprint: string;
  validTo: Date;
  /** True when this start made it (first start, or the old one was unusable or about to expire). */
  generated: boolean;
  /** Why a certificate that was there was replaced. */
  replaced?: string;
}

/** Makes the self-signed certificate HTTPS=1 serves, once: an existing, valid pair is reused. Key file mode 0600. */
export async function ensureSelfSignedCertificate(tls: TlsConfig, now = new Date()): Promise<SelfSignedCertificate> {
  let replaced: string | undefined;
  try {
    const cert = checkPair(readFileSync(tls.certFile, 'utf8'), readFileSync(tls.keyFile, 'utf8'));
    const validTo = new Date(cert.validTo);
    if (validTo.getTime() - now.getTime() > RENEW_DAYS * 86400_000) {
      return { certFile: resolve(tls.certFile), fingerprint: cert.fingerprint256, validTo, generated: false };
    }
    replaced = `it expires on ${validTo.toISOString()}`;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') replaced = err instanceof TlsConfigError ? 'the certificate or key in it is unusable' : (err as Error).message;
  }

  const notAfter = new Date(now.getTime() + VALIDITY_DAYS * 86400_000);
  // Loaded only here: the library and its X.509 stack cost 160 ms and 17 MB, needed only when a certificate is made.
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...SELF_SIGNED_NAMES.dns.map((value) => ({ type: 2 as const, value })), ...SELF_SIGNED_NAMES.ip.map((ip) => ({ type: 7 as const, ip }))],
      },
    ],
  });
  mkdirSync(dirname(tls.keyFile), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(tls.certFile), { recursive: true, mode: 0o700 });
  writeAtomically(tls.keyFile, pems.private, 0o600);
  writeAtomically(tls.certFile, pems.cert, 0o644);
  const cert = new X509Certificate(pems.cert);
  return { certFile: resolve(tls.certFile), fingerprint: cert.fingerprint256, validTo: new Date(cert.validTo), generated: true, replaced };
}

/** Write to a temporary file with its final mode, then rename: a crash never leaves half a key, nor a key readable by others. */
function writeAtomically(file: string, content: string, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode });
  chmodSync(temporary, mode);
  renameSync(temporary, file);
}

/** The HTTP server, or with TLS configured an HTTPS one (an http.Server too): same listener, same events. */
export function createListener(tls: TlsConfig | undefined, listener: RequestListener): Server {
  // Host is checked by the service itself, in Graph's error shape (node's own check answers with an empty body).
  if (!tls) return createHttpServer({ requireHostHeader: false }, listener);
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(tls.certFile);
    key = readFileSync(tls.keyFile);
  } catch (err) {
    throw new Error(
      tls.selfSigned
        ? `the self-signed certificate is missing (${(err as Error).message}); ensureSelfSignedCertificate() makes it`
        : (err as Error).message,
      { cause: err },
    );
  }
  return createHttpsServer({ cert, key, requireHostHeader: false }, listener);
}
