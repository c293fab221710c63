import { DeviceCollection, DeviceIdentitiesController } from './controllers/device-identities.controller';
import { DEFAULT_UPLOAD_PATH, UploadsController, UPLOADS_PATH } from './controllers/uploads.controller';
import { badRequest, ODataError } from './odata/errors';
import { TYPE } from './odata/model';
import { ODataRequest, Reply } from './odata/request';
import { parseSegment, Segment } from './odata/resource-path';

/**
 * The URL surface (SPEC §3): resource paths below the service root → the controller method for each HTTP method.
 * @odata/server cannot route singletons or containment (odata-server-notes defects 1 and 9) and its per-request
 * processor costs ~100x (defect 10), so this table dispatches straight to the controllers.
 */
export type Handler = (req: ODataRequest) => Promise<Reply>;

export interface Route {
  /** Methods and their handlers; anything else is 405 with Allow. */
  methods: Partial<Record<string, Handler>>;
  /** Methods whose requests need a body: JSON, or one of `otherBodies` for that method. */
  jsonBody?: Set<string>;
  /** Media types a method accepts besides application/json (the body is then left unparsed in `rawBody`). */
  otherBodies?: Partial<Record<string, string[]>>;
  /** 'text': the resource is a raw value (`/$count`), served as text/plain rather than JSON. */
  produces?: 'json' | 'text';
}

const UPLOADS = 'importedWindowsAutopilotDeviceIdentityUploads';
const LIVE = 'importedWindowsAutopilotDeviceIdentities';
const DEVICES = 'deviceIdentities';

const notFoundSegment = (segment: string) => new ODataError('ResourceNotFound', `Resource not found for the segment '${segment}'.`);

/** Path segment names match case-insensitively, as on Graph; keys keep their case. */
function is(segment: Segment, name: string): boolean {
  return segment.name.toLowerCase() === name.toLowerCase();
}

function isOperation(segment: Segment, name: string): boolean {
  return segment.key === undefined && (is(segment, name) || is(segment, `microsoft.graph.${name}`));
}

export class Routes {
  constructor(
    private readonly uploads: UploadsController,
    private readonly devices: DeviceIdentitiesController,
  ) {}

  /** Resolves the segments below the service root. `tenantId` scopes the default upload. */
  resolve(raw: string[], tenantId: string, serviceRoot: string): Route | undefined {
    const segments = raw.map(parseSegment);
    const [first, ...rest] = segments;
    if (!first) return undefined;
    if (first.key !== undefined || first.call) throw notFoundSegment(raw[0]);

    if (is(first, 'deviceManagement')) {
      if (rest.length === 0) return this.deviceManagement();
      const [nav, ...tail] = rest;
      if (nav.call) throw notFoundSegment(raw[1]);
      if (is(nav, UPLOADS)) return this.uploadsRoute(nav, tail, raw.slice(2), serviceRoot);
      if (is(nav, LIVE)) {
        const collection: DeviceCollection = {
          tenantId,
          uploadId: null,
          path: `deviceManagement/${LIVE}`,
          url: `${serviceRoot}/deviceManagement/${LIVE}`,
        };
        return this.devicesRoute(collection, nav.key, tail, raw.slice(2), async () => undefined);
      }
      throw notFoundSegment(raw[1]);
    }

    if (is(first, DEFAULT_UPLOAD_PATH)) {
      const ensure = () => this.uploads.ensureDefault(tenantId);
      if (rest.length === 0) {
        return {
          methods: {
            GET: async (req) => this.uploads.getByKey(req, await ensure(), DEFAULT_UPLOAD_PATH),
            PATCH: async (req) => this.uploads.update(req, await ensure(), DEFAULT_UPLOAD_PATH),
            PUT: async (req) => this.uploads.update(req, await ensure(), DEFAULT_UPLOAD_PATH),
          },
          jsonBody: new Set(['PATCH', 'PUT']),
        };
      }
      const [nav, ...tail] = rest;
      if (isOperation(nav, 'autopilotDeviceStream') && tail.length === 0) {
        return { methods: { GET: async (req) => this.uploads.autopilotDeviceStream(req, await ensure()) } };
      }
      if (!is(nav, DEVICES) || nav.call) throw notFoundSegment(raw[1]);
      const collection = (): DeviceCollection => ({
        tenantId,
        uploadId: '',
        path: `${DEFAULT_UPLOAD_PATH}/${DEVICES}`,
        url: `${serviceRoot}/${DEFAULT_UPLOAD_PATH}/${DEVICES}`,
      });
      return this.devicesRoute(collection(), nav.key, tail, raw.slice(2), async (c) => {
        c.uploadId = await ensure();
      });
    }
    throw notFoundSegment(raw[0]);
  }

  private deviceManagement(): Route {
    return {
      methods: {
        GET: async (req) => ({
          status: 200,
          json: {
            '@odata.context': `${req.serviceRoot}/$metadata#deviceManagement`,
            '@odata.type': `#${TYPE.deviceManagement}`,
            id: req.tenantId,
          },
        }),
      },
    };
  }

  private uploadsRoute(nav: Segment, tail: Segment[], raw: string[], serviceRoot: string): Route {
    let key = nav.key;
    let rest = tail;
    let rawRest = raw;
    if (key === undefined && rest.length > 0 && !is(rest[0], '$count') && rest[0].key === undefined && !rest[0].call) {
      key = rest[0].name; // the key as its own segment: …Uploads/{id}
      rest = rest.slice(1);
      rawRest = raw.slice(1);
    }
    if (key === undefined) {
      if (rest.length === 0) {
        return {
          methods: { GET: (req) => this.uploads.list(req), POST: (req) => this.uploads.create(req) },
          jsonBody: new Set(['POST']),
        };
      }
      if (rest.length === 1 && is(rest[0], '$count')) return { methods: { GET: (req) => this.uploads.count(req) }, produces: 'text' };
      throw notFoundSegment(raw[0]);
    }
    const uploadKey = key;
    const path = `${UPLOADS_PATH}`;
    if (rest.length === 0) {
      return {
        methods: {
          GET: (req) => this.uploads.getByKey(req, uploadKey, path),
          PATCH: (req) => this.uploads.update(req, uploadKey, path),
          PUT: (req) => this.uploads.update(req, uploadKey, path),
          DELETE: (req) => this.uploads.remove(req, uploadKey),
        },
        jsonBody: new Set(['PATCH', 'PUT']),
      };
    }
    const [next, ...after] = rest;
    if (isOperation(next, 'autopilotDeviceStream') && after.length === 0) {
      return { methods: { GET: (req) => this.uploads.autopilotDeviceStream(req, uploadKey) } };
    }
    if (!is(next, DEVICES) || next.call) throw notFoundSegment(rawRest[0]);
    const collection = (tenantId: string): DeviceCollection => ({
      tenantId,
      uploadId: uploadKey,
      path: `${UPLOADS_PATH}('${uploadKey}')/${DEVICES}`,
      url: `${serviceRoot}/${UPLOADS_PATH}('${uploadKey}')/${DEVICES}`,
    });
    return this.devicesRoute(collection(''), next.key, after, rawRest.slice(1), async (c, req, memberAddressed) => {
      c.tenantId = req.tenantId;
      // Members are looked up within (tenant, upload): if the upload is not there, neither is the member. Reads of
      // the collection check the upload only when they find nothing; writes check it before anything is written.
      const require = () => this.uploads.requireUpload(req.tenantId, uploadKey);
      if (memberAddressed) return;
      if (req.method === 'GET' || req.method === 'HEAD') c.requireContainer = require;
      else await require();
    });
  }

  /** A device collection and its members; `prepare` checks/fills in the containing upload before any handler runs. */
  private devicesRoute(
    collection: DeviceCollection,
    segmentKey: string | undefined,
    tail: Segment[],
    raw: string[],
    prepare: (c: DeviceCollection, req: ODataRequest, memberAddressed: boolean) => Promise<void>,
  ): Route {
    let key = segmentKey;
    let rest = tail;
    if (key === undefined && rest.length > 0 && !is(rest[0], '$count') && rest[0].key === undefined && !rest[0].call && !isOperation(rest[0], 'import')) {
      key = rest[0].name;
      rest = rest.slice(1);
    }
    const wrap =
      (fn: (req: ODataRequest, c: DeviceCollection) => Promise<Reply>): Handler =>
      async (req) => {
        const c = { ...collection, tenantId: collection.tenantId || req.tenantId };
        await prepare(c, req, key !== undefined);
        return fn(req, c);
      };
    if (key === undefined) {
      if (rest.length === 0) {
        return {
          methods: {
            GET: wrap((req, c) => this.devices.list(req, c)),
            POST: wrap((req, c) => this.devices.create(req, c)),
            PATCH: wrap((req, c) => this.devices.upsert(req, c)),
          },
          jsonBody: new Set(['POST', 'PATCH']),
        };
      }
      if (rest.length === 1 && is(rest[0], '$count')) return { methods: { GET: wrap((req, c) => this.devices.count(req, c)) }, produces: 'text' };
      if (rest.length === 1 && isOperation(rest[0], 'import')) {
        // SPEC §4: the import action also takes the standard Autopilot CSV.
        return {
          methods: { POST: wrap((req, c) => this.devices.import(req, c)) },
          jsonBody: new Set(['POST']),
          otherBodies: { POST: ['text/csv'] },
        };
      }
      throw notFoundSegment(raw[0]);
    }
    if (rest.length > 0) throw notFoundSegment(raw[raw.length - rest.length] ?? raw[0]);
    const deviceKey = key;
    return {
      methods: {
        GET: wrap((req, c) => this.devices.getByKey(req, c, deviceKey)),
        PATCH: wrap((req, c) => this.devices.update(req, c, deviceKey)),
        PUT: wrap((req, c) => this.devices.update(req, c, deviceKey, true)),
        DELETE: wrap((req, c) => this.devices.remove(req, c, deviceKey)),
      },
      jsonBody: new Set(['PATCH', 'PUT']),
    };
  }
}

