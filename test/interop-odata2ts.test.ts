import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GUID, startService, TestService, token } from './support/service';

/**
 * odata2ts 0.34.0 as a user runs it: fetch the served $metadata, generate models, query objects and services, compile
 * them (and a small program using them) with the project's TypeScript in strict mode, then run the program: one create,
 * one filtered query and one PATCH through the generated client (@odata2ts/http-client-fetch).
 */
const PROGRAM = `import { FetchClient } from '@odata2ts/http-client-fetch';
import { GraphService } from './gen/GraphService';

async function main() {
  const client = new FetchClient({ headers: { Authorization: \`Bearer \${process.env.TOKEN}\` } });
  const graph = new GraphService(client, process.env.GRAPH_ROOT!);
  const devices = graph.deviceManagement().importedWindowsAutopilotDeviceIdentities();
  const created = await devices.create({ serialNumber: 'O2TS-1', groupTag: 'o2ts' });
  await devices.create({ serialNumber: 'O2TS-2', groupTag: 'other' });
  const queried = await devices.query((builder, q) => builder.select('id', 'serialNumber', 'groupTag').filter(q.groupTag.eq('o2ts')));
  const id: string = created.data.id;
  const patched = await graph.deviceManagement().importedWindowsAutopilotDeviceIdentities(id).patch({ groupTag: 'o2ts-patched' });
  const after = await graph.deviceManagement().importedWindowsAutopilotDeviceIdentities(id).query((builder) => builder.select('id', 'groupTag', 'state'));
  console.log(JSON.stringify({
    created: { status: created.status, id, serialNumber: created.data.serialNumber, importStatus: created.data.state?.deviceImportStatus },
    queried: { status: queried.status, value: queried.data.value.map((d) => ({ id: d.id, serialNumber: d.serialNumber, groupTag: d.groupTag })) },
    patched: { status: patched.status },
    after: { status: after.status, groupTag: after.data.groupTag, importStatus: after.data.state?.deviceImportStatus },
  }));
}

main().catch((err) => {
  console.log(JSON.stringify({ failed: String(err?.message ?? err), status: err?.status }));
  process.exitCode = 1;
});
`;

const TSCONFIG = {
  compilerOptions: { target: 'ES2022', module: 'commonjs', moduleResolution: 'node', lib: ['ES2022', 'DOM'], types: ['node'], strict: true, noImplicitAny: true, esModuleInterop: true, skipLibCheck: true, outDir: 'dist' },
  include: ['gen/**/*.ts', 'main.ts'],
};

function run(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, args, { cwd, env: { PATH: process.env.PATH, ...env }, timeout: 60000 }, (_err, stdout, stderr) =>
      resolve({ code: child.exitCode, stdout, stderr }),
    );
  });
}

describe('odata2ts 0.34.0', () => {
  let service: TestService;
  let dir: string;
  const seen: { method: string; url: string }[] = [];
  beforeAll(async () => {
    service = await startService();
    service.app.server.on('request', (req) => seen.push({ method: req.method ?? '', url: req.url ?? '' }));
    dir = mkdtempSync(join(tmpdir(), 'odata2ts-'));
    // the generated code imports @odata2ts/*: resolve them from the project, as an app that installed them would
    symlinkSync(join(__dirname, '..', 'node_modules'), join(dir, 'node_modules'), 'dir');
  });
  afterAll(async () => {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('generates a typed client from the served $metadata that compiles strict and creates, queries and patches', async () => {
    // arrange: $metadata fetched from the running service, a tsconfig, a program using the generated client
    const metadata = await service.get('$metadata', { anonymous: true });
    expect(metadata.status).toBe(200);
    writeFileSync(join(dir, 'metadata.xml'), metadata.text);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    writeFileSync(join(dir, 'main.ts'), PROGRAM);

    // act: generate, compile, run
    const generated = await run([require.resolve('@odata2ts/odata2ts/lib/run-cli.js'), '-s', 'metadata.xml', '-o', 'gen', '-m', 'all', '-e', 'ts', '-name', 'Graph'], dir);
    const compiled = await run([require.resolve('typescript/bin/tsc'), '-p', '.'], dir);
    const ran = await run([join(dir, 'dist', 'main.js')], dir, { GRAPH_ROOT: service.root, TOKEN: await token() });

    // assert: generation and compilation clean
    expect([generated.code, generated.stderr]).toEqual([0, '']);
    expect(generated.stdout).toContain('Successfully finished!');
    expect(readdirSync(join(dir, 'gen')).sort()).toEqual(['GraphModel.ts', 'GraphService.ts', 'QGraph.ts']);
    const model = readFileSync(join(dir, 'gen', 'GraphModel.ts'), 'utf8');
    expect(model).toMatch(/export interface importedWindowsAutopilotDeviceIdentity extends entity \{/);
    expect(model).toMatch(/export enum importedWindowsAutopilotDeviceIdentityImportStatus \{/);
    expect([compiled.code, compiled.stdout, compiled.stderr]).toEqual([0, '', '']);

    // assert: the generated client's requests and what it read
    const out = JSON.parse(ran.stdout.trim().split('\n').pop() ?? '{}');
    expect([ran.code, out.failed, ran.stderr]).toEqual([0, undefined, '']);
    expect(out.created).toEqual({ status: 201, id: expect.stringMatching(GUID), serialNumber: 'O2TS-1', importStatus: 'unknown' });
    expect(out.queried).toEqual({ status: 200, value: [{ id: out.created.id, serialNumber: 'O2TS-1', groupTag: 'o2ts' }] });
    expect([200, 204]).toContain(out.patched.status);
    expect(out.after).toEqual({ status: 200, groupTag: 'o2ts-patched', importStatus: 'unknown' });
    const fromClient = seen.filter((r) => r.url.startsWith('/beta/deviceManagement/'));
    expect(fromClient.map((r) => r.method)).toEqual(['POST', 'POST', 'GET', 'PATCH', 'GET']);
    expect(decodeURIComponent(fromClient[2].url)).toContain("$filter=groupTag eq 'o2ts'");
    expect(fromClient[3].url).toMatch(new RegExp(`/importedWindowsAutopilotDeviceIdentities\\('?${out.created.id}'?\\)$`));
    expect((await service.get(`deviceManagement/importedWindowsAutopilotDeviceIdentities/${out.created.id}`)).body.groupTag).toBe('o2ts-patched');
  }, 90000);
});
