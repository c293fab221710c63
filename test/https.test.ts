import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../src/config';
import { ensureSelfSignedCertificate } from '../src/http/tls';
import { spawnService } from './support/process';
import { LIVE, startService, TestService } from './support/service';

/** What HTTPS gives a client: TLS on TLS_CERT/TLS_KEY or a generated certificate, and links that keep the https scheme. */

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'https-'));
}

/** A certificate and key as HTTPS=1 makes them, in a directory of their own. */
async function selfSigned(): Promise<{ certFile: string; keyFile: string }> {
  const dir = tempDir();
  const tls = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), selfSigned: true };
  await ensureSelfSignedCertificate(tls);
  return tls;
}

/** Runs `node -e script` with the environment given, resolving with its stdout, stderr and exit code. */
function node(script: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, ...env } }, (_err, stdout, stderr) =>
      resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

describe('TLS configuration is checked at start', () => {
  let pair: { certFile: string; keyFile: string };
  let other: { certFile: string; keyFile: string };
  let notPem: string;
  beforeAll(async () => {
    pair = await selfSigned();
    other = await selfSigned();
    notPem = join(tempDir(), 'not.pem');
    writeFileSync(notPem, 'hello\n');
  });

  it.each([
    ["TLS_CERT cannot be read: '/nonexistent/cert.pem': no such file", () => ({ TLS_CERT: '/nonexistent/cert.pem', TLS_KEY: pair.keyFile })],
    ["TLS_KEY cannot be read: '/nonexistent/key.pem': no such file", () => ({ TLS_CERT: pair.certFile, TLS_KEY: '/nonexistent/key.pem' })],
    ['TLS_KEY must be set with TLS_CERT', () => ({ TLS_CERT: pair.certFile })],
    ['TLS_CERT must be set with TLS_KEY', () => ({ TLS_KEY: pair.keyFile })],
    ['TLS_CERT must be a PEM certificate file', () => ({ TLS_CERT: notPem, TLS_KEY: pair.keyFile })],
    ['TLS_CERT must be a PEM certificate file', () => ({ TLS_CERT: pair.keyFile, TLS_KEY: pair.keyFile })],
    ['TLS_KEY must be a PEM private key file', () => ({ TLS_CERT: pair.certFile, TLS_KEY: notPem })],
    ['TLS_KEY is not the private key of the certificate in TLS_CERT', () => ({ TLS_CERT: pair.certFile, TLS_KEY: other.keyFile })],
    ["HTTPS must be 1 or 0, got 'yes'", () => ({ HTTPS: 'yes' })],
  ])('refuses: %s', (message, env) => {
    expect(() => loadConfig(env())).toThrow(ConfigError);
    expect(() => loadConfig(env())).toThrow(message);
  });

  it('accepts a matching pair, and HTTPS=1 keeps its certificate beside the database', () => {
    expect(loadConfig({ TLS_CERT: pair.certFile, TLS_KEY: pair.keyFile }).tls).toEqual({ ...pair, selfSigned: false });
    expect(loadConfig({ HTTPS: '1', DATABASE_URL: 'sqlite:/srv/ap/db.sqlite' }).tls).toEqual({
      certFile: '/srv/ap/tls-cert.pem',
      keyFile: '/srv/ap/tls-key.pem',
      selfSigned: true,
    });
    expect(loadConfig({ HTTPS: '0' }).tls).toBeUndefined();
  });

  it('stops npm start with exit code 2, naming the variable', async () => {
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['-r', 'ts-node/register/transpile-only', join(__dirname, '..', 'src', 'main.ts')], {
        env: { PATH: process.env.PATH, TLS_CERT: '/nonexistent/cert.pem', TLS_KEY: pair.keyFile },
      }, (_err, _stdout, stderr) => resolve({ code: child.exitCode, stderr }));
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Configuration error: TLS_CERT cannot be read: '/nonexistent/cert.pem'");
  }, 60000);
});

describe('a service on TLS_CERT/TLS_KEY', () => {
  let service: TestService;
  let tls: { certFile: string; keyFile: string };
  beforeAll(async () => {
    tls = await selfSigned();
    service = await startService({ TLS_CERT: tls.certFile, TLS_KEY: tls.keyFile, DEFAULT_PAGE_SIZE: '1' });
  });
  afterAll(() => service.close());

  it('answers over https, and only to clients that trust its certificate', async () => {
    // act
    const trusted = await service.get(LIVE);
    const untrusted = await fetch(`${service.root}/${LIVE}`).then(
      () => 'answered',
      (err) => (err as { cause?: { code?: string } }).cause?.code,
    );
    const plain = await fetch(`${service.root.replace('https:', 'http:')}/$metadata`).then(
      () => 'answered',
      () => 'refused',
    );

    // assert
    expect(service.root).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/beta$/);
    expect(trusted.status).toBe(200);
    expect(untrusted).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(plain).toBe('refused');
  });

  it('puts https://127.0.0.1:PORT in @odata.context, Location and @odata.nextLink', async () => {
    // arrange: two devices and pages of one
    const first = await service.request('POST', LIVE, { body: { serialNumber: 'TLS-1' } });
    await service.request('POST', LIVE, { body: { serialNumber: 'TLS-2' } });

    // act
    const page = await service.get(LIVE);
    const next = await service.get(page.body['@odata.nextLink']);

    // assert
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toBe(`${service.root}/${LIVE}('${first.body.id}')`);
    expect(first.body['@odata.context']).toBe(`${service.root}/$metadata#deviceManagement/importedWindowsAutopilotDeviceIdentities/$entity`);
    expect(page.body['@odata.context']).toBe(`${service.root}/$metadata#deviceManagement/importedWindowsAutopilotDeviceIdentities`);
    expect(page.body['@odata.nextLink']).toMatch(new RegExp(`^${service.root.replace(/\./g, '\\.')}/${LIVE}\\?`));
    expect(next.status).toBe(200);
    expect([...page.body.value, ...next.body.value].map((d: { serialNumber: string }) => d.serialNumber).sort()).toEqual(['TLS-1', 'TLS-2']);
  });

  it('takes the host from the request, as the client reached it', async () => {
    // act: the same service reached as localhost (the certificate names it too)
    const port = new URL(service.origin).port;
    const body = await new Promise<string>((resolve, reject) => {
      httpsRequest(`https://localhost:${port}/beta/`, { ca: readFileSync(tls.certFile) }, (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve(text));
      }).on('error', reject).end();
    });

    // assert
    expect(JSON.parse(body)['@odata.context']).toBe(`https://localhost:${port}/beta/$metadata`);
  });
});

describe('PUBLIC_URL', () => {
  it('wins over the scheme and host the client reached', async () => {
    const tls = await selfSigned();
    const service = await startService({ TLS_CERT: tls.certFile, TLS_KEY: tls.keyFile, PUBLIC_URL: 'http://autopilot.example.test:8080/ignored' });
    try {
      const res = await service.get(LIVE);
      expect(res.body['@odata.context']).toBe('http://autopilot.example.test:8080/beta/$metadata#deviceManagement/importedWindowsAutopilotDeviceIdentities');
    } finally {
      await service.close();
    }
  });
});

describe('HTTPS=1 (npm start)', () => {
  it('makes a self-signed certificate once, prints how to trust it, and reuses it on the next start', async () => {
    // arrange: a data directory of its own, no AUTH_SECRET (so a token is printed)
    const dir = tempDir();
    const env = { HTTPS: '1', DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, AUTH_SECRET: '' };
    const first = await spawnService(env);
    let printed: { path?: string; token?: string; output: string };
    let answer;
    try {
      const output = first.output();
      printed = { path: /export NODE_EXTRA_CA_CERTS=(\S+)/.exec(output)?.[1], token: /export TOKEN=(\S+)/.exec(output)?.[1], output };

      // act: a Node client that trusts the certificate as the banner says, with the printed token
      answer = await node(
        `fetch(${JSON.stringify(`https://localhost:${first.port}/beta/${LIVE}`)}, { headers: { Authorization: 'Bearer ' + process.env.TOKEN } })
           .then(async (r) => console.log(r.status, JSON.stringify(await r.json())), (e) => console.log('failed', e.cause?.code))`,
        { NODE_EXTRA_CA_CERTS: printed.path ?? '', TOKEN: printed.token ?? '' },
      );
    } finally {
      expect(await first.stop()).toBe(0);
    }

    // assert: the banner, the files, the client's answer
    expect(printed.output).toContain(`listening on https://127.0.0.1:${first.port}/beta`);
    expect(printed.output).toContain(`API page: https://127.0.0.1:${first.port}/docs`);
    expect(printed.output).toContain('made a self-signed certificate for localhost, 127.0.0.1 and ::1');
    expect(printed.path).toBe(join(dir, 'tls-cert.pem'));
    expect(statSync(join(dir, 'tls-key.pem')).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(readFileSync(join(dir, 'tls-cert.pem')));
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(answer.stdout.trim()).toBe(`200 {"@odata.context":"https://localhost:${first.port}/beta/$metadata#deviceManagement/importedWindowsAutopilotDeviceIdentities","value":[]}`);

    // act: start again on the same data directory
    const second = await spawnService(env);
    const secondOutput = second.output();
    expect(await second.stop()).toBe(0);

    // assert: the same certificate, not a new one
    expect(secondOutput).toContain('using the self-signed certificate');
    expect(secondOutput).toContain(`SHA-256 ${cert.fingerprint256}`);
    expect(new X509Certificate(readFileSync(join(dir, 'tls-cert.pem'))).fingerprint256).toBe(cert.fingerprint256);
  }, 180000);

  it('replaces a generated certificate that is unusable or about to expire', async () => {
    // arrange: one made 400 days ago (valid 365), and one whose key file was damaged
    const dir = tempDir();
    const old = { certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem'), selfSigned: true };
    const before = await ensureSelfSignedCertificate(old, new Date(Date.now() - 400 * 86400_000));
    const damaged = await selfSigned();
    writeFileSync(damaged.keyFile, 'garbage');

    // act
    const renewed = await ensureSelfSignedCertificate(old);
    const repaired = await ensureSelfSignedCertificate({ ...damaged, selfSigned: true });

    // assert
    expect(renewed.generated).toBe(true);
    expect(renewed.replaced).toMatch(/^it expires on /);
    expect(renewed.fingerprint).not.toBe(before.fingerprint);
    expect(renewed.validTo.getTime()).toBeGreaterThan(Date.now() + 300 * 86400_000);
    expect(repaired.generated).toBe(true);
    expect(repaired.replaced).toBe('the certificate or key in it is unusable');
    expect(() => loadConfig({ TLS_CERT: damaged.certFile, TLS_KEY: damaged.keyFile })).not.toThrow();
  });
});

