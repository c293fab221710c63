import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aDevice } from './fixtures/devices';
import { DEFAULT_UPLOAD, LIVE, startService, TestService, UPLOADS } from './support/service';

/**
 * Data survives a restart (SPEC §5): a service on a SQLite file is closed and a new one is started on the same file;
 * everything written before reads back identically, ETags included, and the default upload keeps its id.
 */
const STATEFUL: [string, (ids: Ids) => string][] = [
  ['the uploads collection', () => UPLOADS],
  ['an upload', (ids) => `${UPLOADS}/${ids.upload}`],
  ['its devices', (ids) => `${UPLOADS}('${ids.upload}')/deviceIdentities`],
  ['one of its devices', (ids) => `${UPLOADS}/${ids.upload}/deviceIdentities/${ids.uploadDevice}`],
  ['the live collection', () => LIVE],
  ['a live device', (ids) => `${LIVE}('${ids.liveDevice}')`],
  ['the default upload', () => DEFAULT_UPLOAD],
  ['the default upload’s devices', () => `${DEFAULT_UPLOAD}/deviceIdentities`],
  ['the CSV stream', (ids) => `${UPLOADS}/${ids.upload}/autopilotDeviceStream()`],
];

interface Ids {
  upload: string;
  uploadDevice: string;
  deletedDevice: string;
  deletedUpload: string;
  liveDevice: string;
  defaultUpload: string;
}

let dir: string;
let databaseUrl: string;
let service: TestService | undefined;
let ids: Ids;
const before = new Map<string, unknown>();

/** Compares bodies across services: only the port in absolute URLs may differ. */
const portless = (text: string) => text.replace(/http:\/\/127\.0\.0\.1:\d+/g, 'ORIGIN');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'autopilot-persistence-'));
  databaseUrl = `sqlite:${join(dir, 'service.sqlite')}`;

  // arrange: write through every kind of route, including deletes, then remember what reads back
  service = await startService({}, databaseUrl);
  const upload = await service.request('POST', UPLOADS, { body: { deviceIdentities: [aDevice({ serialNumber: 'P-1' }), aDevice({ serialNumber: 'P-2' })] } });
  const [kept, deleted] = upload.body.deviceIdentities;
  await service.request('PATCH', `${UPLOADS}/${upload.body.id}/deviceIdentities/${kept.id}`, { body: { groupTag: 'patched', state: { deviceErrorCode: 7 } } });
  await service.request('DELETE', `${UPLOADS}/${upload.body.id}/deviceIdentities/${deleted.id}`);
  const doomed = await service.request('POST', UPLOADS, { body: { deviceIdentities: [aDevice({ serialNumber: 'GONE' })] } });
  await service.request('DELETE', `${UPLOADS}/${doomed.body.id}`);
  const live = await service.request('POST', LIVE, { body: aDevice({ serialNumber: 'P-LIVE', hardwareIdentifier: '-_8' }) });
  await service.request('POST', `${LIVE}/import`, { body: { importedWindowsAutopilotDeviceIdentities: [aDevice({ serialNumber: 'P-IMPORTED' })] } });
  await service.request('PATCH', `${DEFAULT_UPLOAD}/deviceIdentities`, { body: aDevice({ serialNumber: 'P-S2' }) });
  ids = {
    upload: upload.body.id,
    uploadDevice: kept.id,
    deletedDevice: deleted.id,
    deletedUpload: doomed.body.id,
    liveDevice: live.body.id,
    defaultUpload: (await service.get(DEFAULT_UPLOAD)).body.id,
  };
  for (const [name, path] of STATEFUL) before.set(name, portless((await service.get(path(ids))).text));

  // act: restart on the same file
  await service.close();
  service = await startService({}, databaseUrl);
});

afterAll(async () => {
  await service?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('after a restart on the same SQLite file', () => {
  it.each(STATEFUL)('%s reads back identically', async (name, path) => {
    const res = await service!.get(path(ids));

    expect(res.status).toBe(200);
    expect(portless(res.text)).toBe(before.get(name));
  });

  it('what was written is really there (not just the same empty answer twice)', async () => {
    const devices = await service!.get(`${UPLOADS}/${ids.upload}/deviceIdentities`);
    const live = await service!.get(LIVE);

    expect(devices.body.value.map((d: any) => [d.serialNumber, d.groupTag, d.state.deviceErrorCode])).toEqual([['P-1', 'patched', 7]]);
    expect(live.body.value.map((d: any) => d.serialNumber).sort()).toEqual(['P-IMPORTED', 'P-LIVE']);
    expect(live.body.value.find((d: any) => d.serialNumber === 'P-LIVE').hardwareIdentifier).toBe('+/8=');
    expect((await service!.get(`${DEFAULT_UPLOAD}/deviceIdentities`)).body.value.map((d: any) => d.serialNumber)).toEqual(['P-S2']);
  });

  it.each([
    ['the deleted device', () => `${UPLOADS}/${ids.upload}/deviceIdentities/${ids.deletedDevice}`],
    ['the deleted upload', () => `${UPLOADS}/${ids.deletedUpload}`],
    ['the deleted upload’s devices', () => `${UPLOADS}/${ids.deletedUpload}/deviceIdentities`],
  ])('%s stays deleted', async (_name, path) => {
    expect((await service!.get(path())).status).toBe(404);
  });

  it('the default upload keeps its id, in the singleton and in the uploads collection', async () => {
    const singleton = await service!.get(DEFAULT_UPLOAD);
    const list = await service!.get(UPLOADS);

    expect(singleton.body.id).toBe(ids.defaultUpload);
    expect(list.body.value.filter((u: { id: string }) => u.id === ids.defaultUpload)).toHaveLength(1);
    expect(list.body.value).toHaveLength(2);
  });

  it('writes after the restart persist through another restart', async () => {
    // act
    const created = await service!.request('POST', `${UPLOADS}/${ids.upload}/deviceIdentities`, { body: aDevice({ serialNumber: 'P-3' }) });
    await service!.request('DELETE', `${LIVE}/${ids.liveDevice}`);
    await service!.close();
    service = await startService({}, databaseUrl);

    // assert
    expect((await service.get(`${UPLOADS}/${ids.upload}/deviceIdentities/${created.body.id}`)).body.serialNumber).toBe('P-3');
    expect((await service.get(`${LIVE}/${ids.liveDevice}`)).status).toBe(404);
  });
});
