import { LIVE, startService, TestService, token, UPLOADS } from './support/service';

/**
 * GETs by key that arrive together are answered by one statement (ScopedTable.lookup): each must still get exactly its
 * own entity, and only within its own scope (tenant, containing upload), whatever else shares the statement.
 */
let service: TestService;
beforeAll(async () => {
  service = await startService();
});
afterAll(() => service.close());

async function createUpload(tenant: string, serials: string[]): Promise<{ upload: string; devices: string[] }> {
  const auth = { Authorization: `Bearer ${await token(tenant)}` };
  const res = await service.request('POST', UPLOADS, { headers: auth, body: { deviceIdentities: serials.map((serialNumber) => ({ serialNumber })) } });
  expect(res.status).toBe(201);
  return { upload: res.body.id, devices: res.body.deviceIdentities.map((d: { id: string }) => d.id) };
}

it('answers concurrent GETs by key each with its own entity, in its own scope only', async () => {
  // arrange: two uploads of tenant default, one of tenant other, a live device
  const a = await createUpload('default', ['A-0', 'A-1', 'A-2']);
  const b = await createUpload('default', ['B-0']);
  const other = await createUpload('other', ['O-0']);
  const live = (await service.request('POST', LIVE, { body: { serialNumber: 'L-0' } })).body.id as string;
  const cases: [string, number, string | undefined][] = [
    ...a.devices.map((d, i): [string, number, string] => [`${UPLOADS}/${a.upload}/deviceIdentities/${d}`, 200, `A-${i}`]),
    [`${UPLOADS}/${b.upload}/deviceIdentities/${b.devices[0]}`, 200, 'B-0'],
    [`${UPLOADS}/${b.upload}/deviceIdentities/${a.devices[0]}`, 404, undefined], // another upload's device
    [`${UPLOADS}/${other.upload}/deviceIdentities/${other.devices[0]}`, 404, undefined], // another tenant's upload
    [`${UPLOADS}/${a.upload}/deviceIdentities/${live}`, 404, undefined], // a live device under an upload
    [`${LIVE}/${live}`, 200, 'L-0'],
    [`${LIVE}/${a.devices[1]}`, 404, undefined], // an upload's device in the live collection
    [`${LIVE}/00000000-0000-0000-0000-000000000000`, 404, undefined],
    [`${UPLOADS}/${a.upload}`, 200, undefined],
    [`${UPLOADS}/${other.upload}`, 404, undefined],
  ];

  // act: every GET at once, several times over, so they share statements
  const all = [...cases, ...cases, ...cases];
  const answers = await Promise.all(all.map(([path]) => service.get(path)));

  // assert
  expect(answers.map((r) => [r.status, r.body.serialNumber])).toEqual(all.map(([, status, serial]) => [status, serial]));
});
