import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ODataController } from '@odata/server/lib/controller';
import { DeviceIdentitiesController } from '../src/controllers/device-identities.controller';
import { UploadsController } from '../src/controllers/uploads.controller';

/**
 * How @odata/server is used (shared/reference/odata-server-notes.md): its ODataController is the base of our
 * controllers; its per-request processor (defect 10, ~100x slower), default express app (defect 7) and the
 * swagger UI its package index drags in are kept off the request path and out of memory.
 */
describe('@odata/server', () => {
  it('is the base of every controller', () => {
    expect(Object.getPrototypeOf(UploadsController)).toBe(ODataController);
    expect(Object.getPrototypeOf(DeviceIdentitiesController)).toBe(ODataController);
  });

  it('loads neither its processor nor swagger-ui when the service loads', () => {
    // A separate Node process, so jest's own module loading does not blur what the service requires.
    const script = `require('${join(__dirname, '..', 'src', 'server.ts').replace(/\\/g, '/')}');
      const loaded = Object.keys(require.cache);
      console.log(JSON.stringify({
        swagger: loaded.some((k) => k.includes('swagger-ui')),
        processor: loaded.some((k) => /@odata[\\\\/]server[\\\\/]lib[\\\\/]processor/.test(k)),
        controller: loaded.some((k) => /@odata[\\\\/]server[\\\\/]lib[\\\\/]controller/.test(k)),
      }));`;
    const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ swagger: false, processor: false, controller: true });
  });
});
