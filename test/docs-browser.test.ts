import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, chromium } from 'playwright-core';
import { ensureSelfSignedCertificate } from '../src/http/tls';
import { LIVE, startService, TestService, token } from './support/service';

/** Debian's chromium package (.ci/run installs it); playwright-core downloads no browser. */
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(__dirname, '..', 'test-artifacts');

/**
 * A person on /docs: opens the page in a real browser, authorises with a token through Swagger UI's dialog, runs
 * "list importedWindowsAutopilotDeviceIdentities" and sees the data. Over HTTPS=1-style TLS, as `npm start` serves it.
 */
describe('the API page in a browser', () => {
  let service: TestService;
  let browser: Browser;
  const seen: { method: string; url: string; authorization?: string }[] = [];
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'docs-'));
    const tls = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), selfSigned: true };
    await ensureSelfSignedCertificate(tls);
    service = await startService({ TLS_CERT: tls.certFile, TLS_KEY: tls.keyFile });
    service.app.server.on('request', (req) => seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization }));
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  }, 120000);
  afterAll(async () => {
    await browser?.close();
    await service?.close();
  });

  it('authorises with a token, lists devices and shows them', async () => {
    // arrange: a device to find, and a token as `npm start` prints it
    const created = await service.request('POST', LIVE, { body: { serialNumber: 'DOCS-SERIAL-4711', groupTag: 'browser' } });
    expect(created.status).toBe(201);
    const bearer = await token('default', 'read');
    // The certificate is self-signed: the browser is told to accept it, as a person clicks through the warning.
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    page.setDefaultTimeout(30000); // generous: CI shares two cores
    const problems: string[] = [];
    page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('requestfailed', (request) => problems.push(`${request.url()}: ${request.failure()?.errorText}`));

    // act: open the page, authorise through the dialog
    await page.goto(`${service.origin}/docs`);
    await page.locator('.auth-wrapper button.authorize').click();
    const dialog = page.locator('.dialog-ux');
    await dialog.locator('input').fill(bearer);
    await dialog.locator('button.authorize', { hasText: 'Authorize' }).click(); // its accessible name is "Apply credentials"
    await dialog.locator('button', { hasText: 'Logout' }).waitFor(); // Swagger UI took the token
    await dialog.getByRole('button', { name: 'Close' }).click();

    // act: the GET of the live devices' collection, "Try it out", "Execute"
    const operation = page.locator('.opblock-get', {
      has: page.locator('[data-path="/deviceManagement/importedWindowsAutopilotDeviceIdentities"]'),
    });
    await operation.locator('.opblock-summary-control').click();
    await operation.getByRole('button', { name: 'Try it out' }).click();
    await operation.getByRole('button', { name: 'Execute' }).click();
    const response = operation.locator('.live-responses-table .response').first();
    await response.locator('.response-col_status').waitFor();
    // Artefacts: the whole operation as run (summary, parameters, request, response), and the top of the page.
    mkdirSync(ARTIFACTS, { recursive: true });
    await operation.screenshot({ path: join(ARTIFACTS, 'docs.png') });
    await page.mouse.wheel(0, -100000);
    await page.screenshot({ path: join(ARTIFACTS, 'docs-top.png') });

    // assert: what the person sees, and what the service saw
    await expect(response.locator('.response-col_status').innerText()).resolves.toBe('200');
    await expect(response.locator('.response-col_description').innerText()).resolves.toContain('"serialNumber": "DOCS-SERIAL-4711"');
    // The server in the OpenAPI document is the https root the browser reached (odata-openapi's example $top is 50).
    await expect(operation.locator('.request-url').innerText()).resolves.toContain(`${service.root}/deviceManagement/importedWindowsAutopilotDeviceIdentities?%24top=50`);
    const list = seen.filter((r) => r.method === 'GET' && r.url.startsWith(`/beta/${LIVE}`));
    expect(list.map((r) => r.authorization)).toEqual([`Bearer ${bearer}`]);
    expect(seen.filter((r) => r.url === '/beta/$openapi').map((r) => r.authorization)).toEqual([undefined]);

    // act + assert: after a reload the token is still there (persistAuthorization), so the dialog offers Logout
    await page.reload();
    await page.locator('.auth-wrapper button.authorize').click();
    await expect(dialog.locator('.auth-btn-wrapper button').allInnerTexts()).resolves.toEqual(['Logout', 'Close']);
    expect(problems).toEqual([]);
    await context.close();
  }, 120000);
});
