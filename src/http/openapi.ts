import { csdl2openapi } from 'odata-openapi';
import { model } from '../odata/model';

type Csdl = Record<string, any>;

const CAPABILITIES = 'Org.OData.Capabilities.V1';
const AUTHORIZATION = 'Org.OData.Authorization.V1';
const CORE = 'Org.OData.Core.V1';
/** The security scheme's name in the OpenAPI document (`components.securitySchemes`). */
export const BEARER_SCHEME = 'bearer';

/** The term `namespace.name` as the document spells it: through the alias its $Reference gives the vocabulary, if any. */
function term(csdl: Csdl, namespace: string, name: string): string {
  for (const reference of Object.values<Csdl>(csdl.$Reference ?? {})) {
    for (const include of reference.$Include ?? []) {
      if (include.$Namespace === namespace) return `@${include.$Alias ?? namespace}.${name}`;
    }
  }
  return `@${namespace}.${name}`;
}

/**
 * What the service does that its CSDL (Graph's, verbatim) does not say, stated as the OData annotations odata-openapi
 * reads, on a copy: keys as path segments (Graph's canonical form; `('{id}')` works too), bound operations
 * unqualified (`…/import`, as Graph documents them), a bearer token on every request, no `$search` (it answers
 * 501), and the one write the `deviceManagement` singleton does not take. The served $metadata is not changed.
 */
function describeService(csdl: Csdl): Csdl {
  const copy: Csdl = structuredClone(csdl);
  const [namespace, containerName] = splitQualified(copy.$EntityContainer);
  const schema = copy[namespace];
  const container = schema[containerName];
  schema[term(copy, CORE, 'DefaultNamespace')] = true;
  container[term(copy, CAPABILITIES, 'KeyAsSegmentSupported')] = true;
  container[term(copy, AUTHORIZATION, 'Authorizations')] = [
    {
      '@type': `${AUTHORIZATION}.Http`,
      Name: BEARER_SCHEME,
      Scheme: 'bearer',
      BearerFormat: 'JWT',
      Description:
        'An Entra ID style access token: `tid` names the tenant, `scp` or `roles` holds DeviceManagementServiceConfig.Read.All or .ReadWrite.All. ' +
        '`npm start` prints one for tenant "default"; `npm run token` mints more.',
    },
  ];
  container[term(copy, AUTHORIZATION, 'SecuritySchemes')] = [{ Authorization: BEARER_SCHEME }];
  if (container.deviceManagement) container.deviceManagement[term(copy, CAPABILITIES, 'UpdateRestrictions')] = { Updatable: false };
  const notSearchable = { Searchable: false };
  for (const [name, resource] of Object.entries<Csdl>(container)) {
    if (name.startsWith('$') || name.startsWith('@')) continue;
    resource[term(copy, CAPABILITIES, 'SearchRestrictions')] = notSearchable;
    resource[term(copy, CAPABILITIES, 'NavigationRestrictions')] = {
      // A single-valued containment (windowsAutopilotSettings) is not deleted, as the router says.
      RestrictedProperties: containedPaths(resource.$Type).map(({ path, collection }) => ({
        NavigationProperty: path,
        SearchRestrictions: notSearchable,
        ...(collection ? {} : { DeleteRestrictions: { Deletable: false } }),
      })),
    };
  }
  return copy;
}

/** Paths of the contained navigations below an entity type (`importedWindowsAutopilotDeviceIdentityUploads/deviceIdentities`). */
function containedPaths(typeName: string, prefix = '', depth = 0): { path: string; collection: boolean }[] {
  const type = model().typeByName(typeName);
  if (!type || type.kind !== 'entity' || depth > 3) return [];
  return [...type.navigations.values()]
    .filter((navigation) => navigation.containsTarget)
    .flatMap((navigation) => {
      const path = `${prefix}${navigation.name}`;
      return [{ path, collection: navigation.collection }, ...containedPaths(navigation.target.qualifiedName, `${path}/`, depth + 1)];
    });
}

function splitQualified(name: string): [string, string] {
  const dot = name.lastIndexOf('.');
  return [name.slice(0, dot), name.slice(dot + 1)];
}

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; description: string; version: string };
  servers: { url: string }[];
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, unknown>;
  [member: string]: unknown;
}

let cached: OpenApiDocument | undefined;

/**
 * The OpenAPI 3.0 document odata-openapi generates from the served CSDL, made once per process. Its server URL is
 * a placeholder: `openApiJson` puts in the service root each client reached.
 */
export function openApiDocument(): OpenApiDocument {
  if (cached) return cached;
  const messages: string[] = [];
  const document = csdl2openapi(describeService(model().json), {
    openapiVersion: '3.0.3',
    scheme: 'https',
    host: 'localhost',
    basePath: '/beta',
    defaultTitle: 'Windows Autopilot device imports (Microsoft Graph beta compatible)',
    defaultDescription:
      'Generated from this service\'s `$metadata` by odata-openapi. Press **Authorize** and paste the token `npm start` printed ' +
      '(or one from `npm run token`), then open an operation and choose **Try it out**.',
    messages,
  }) as OpenApiDocument;
  if (messages.length > 0) throw new Error(`odata-openapi could not convert the CSDL: ${messages.join('; ')}`);
  cached = document;
  return document;
}

/** The document as JSON, its `servers` naming the service root the client reached. */
export function openApiJson(serviceRoot: string): string {
  return JSON.stringify({ ...openApiDocument(), servers: [{ url: serviceRoot }] });
}
