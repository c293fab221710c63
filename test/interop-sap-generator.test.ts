import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startService, TestService } from './support/service';

/**
 * `@sap-cloud-sdk/generator` (4.5.1: 4.8.0 needs @sap-cloud-sdk/generator-common 4.8.0, which the registry does not
 * have) on the served `$metadata`. It generates request builders only for root entity sets; the container here has only
 * singletons (as Graph's does for these types), so what it can and does generate is the enums, the complex type and the
 * service function — without an error, with one warning: no base path in the metadata (there are no entity sets).
 */
describe('@sap-cloud-sdk/generator', () => {
  let service: TestService;
  let dir: string;
  beforeAll(async () => {
    service = await startService();
    dir = mkdtempSync(join(tmpdir(), 'sap-gen-'));
  });
  afterAll(async () => {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('generates from the served $metadata, exit code 0, enums with their exact members and the state type', async () => {
    // arrange: the $metadata as a client fetches it
    const metadata = await service.get('$metadata', { anonymous: true });
    expect(metadata.status).toBe(200);
    mkdirSync(join(dir, 'in'));
    writeFileSync(join(dir, 'in', 'graph.edmx'), metadata.text);

    // act
    const cli = require.resolve('@sap-cloud-sdk/generator/dist/cli.js');
    const run = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [cli, '--input', join(dir, 'in'), '--outputDir', join(dir, 'out'), '--overwrite'],
        { env: { PATH: process.env.PATH }, timeout: 90000 },
        (_err, stdout, stderr) => resolve({ code: child.exitCode, output: stdout + stderr }),
      );
    });

    // assert
    expect(run.output).toContain('Generation of services finished successfully');
    expect(run.code).toBe(0);
    const problems = run.output.split('\n').filter((line) => /WARN|ERROR/.test(line));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('No base path could be determined from available metadata');
    const files = readdirSync(join(dir, 'out', 'graph')).sort();
    expect(files).toEqual(
      expect.arrayContaining([
        'ImportedWindowsAutopilotDeviceIdentityImportStatus.ts',
        'ImportedWindowsAutopilotDeviceIdentityState.ts',
        'ImportedWindowsAutopilotDeviceIdentityUploadStatus.ts',
        'index.ts',
        'service.ts',
      ]),
    );
    // singletons only: no entity (request builder) files
    expect(files.filter((f) => /Api\.ts$|RequestBuilder\.ts$/.test(f))).toEqual([]);
    const importStatus = readFileSync(join(dir, 'out', 'graph', 'ImportedWindowsAutopilotDeviceIdentityImportStatus.ts'), 'utf8');
    const members = [...importStatus.matchAll(/^\s+(\w+) = '(\w+)'/gm)].map((m) => [m[1], m[2]]);
    expect(members).toEqual(['unknown', 'pending', 'partial', 'complete', 'error'].map((m) => [m, m]));
    const state = readFileSync(join(dir, 'out', 'graph', 'ImportedWindowsAutopilotDeviceIdentityState.ts'), 'utf8');
    for (const property of ['deviceImportStatus', 'deviceRegistrationId', 'deviceErrorCode', 'deviceErrorName']) {
      expect(state).toContain(`originalName: '${property}'`);
    }
  }, 120000);
});
