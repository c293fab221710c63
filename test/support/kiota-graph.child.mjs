/* global process, console, Buffer */
/**
 * The Kiota-based Microsoft Graph beta SDK against the service, in a child process (its packages are ESM only).
 * Env: GRAPH_ROOT (http://127.0.0.1:PORT/beta), TOKEN. Prints one JSON line.
 *
 * The fluent deviceManagement builders are not on the registry, so requests are built as they would build them:
 * RequestInformation with their URI templates, answers read by the SDK's own model parsers.
 */
const { BaseBearerTokenAuthenticationProvider, AllowedHostsValidator, RequestInformation, HttpMethod } = await import('@microsoft/kiota-abstractions');
const { GraphBetaRequestAdapter, createGraphBetaServiceClient } = await import('@microsoft/msgraph-beta-sdk');
const models = await import('@microsoft/msgraph-beta-sdk/models/index.js');
const { createODataErrorFromDiscriminatorValue } = await import('@microsoft/msgraph-beta-sdk/models/oDataErrors/index.js');
const { PageIterator } = await import('@microsoft/msgraph-sdk-core');

const LIST = '{+baseurl}/deviceManagement/importedWindowsAutopilotDeviceIdentities{?%24count,%24expand,%24filter,%24orderby,%24search,%24select,%24skip,%24top}';
const ITEM = '{+baseurl}/deviceManagement/importedWindowsAutopilotDeviceIdentities/{importedWindowsAutopilotDeviceIdentity%2Did}{?%24expand,%24select}';
const COUNT = '{+baseurl}/deviceManagement/importedWindowsAutopilotDeviceIdentities/$count{?%24filter,%24search}';
const errorMappings = { XXX: createODataErrorFromDiscriminatorValue };

async function main() {
  const tokens = [];
  const accessTokenProvider = {
    getAuthorizationToken: async (url) => {
      tokens.push(url);
      return process.env.TOKEN;
    },
    getAllowedHostsValidator: () => new AllowedHostsValidator(),
  };
  const adapter = new GraphBetaRequestAdapter(new BaseBearerTokenAuthenticationProvider(accessTokenProvider));
  adapter.baseUrl = process.env.GRAPH_ROOT;
  createGraphBetaServiceClient(adapter);

  const request = (method, template, path = {}, query = {}) => {
    const info = new RequestInformation(method, template);
    info.pathParameters.baseurl = adapter.baseUrl;
    Object.assign(info.pathParameters, path);
    Object.assign(info.queryParameters, query);
    info.headers.tryAdd('Accept', 'application/json');
    return info;
  };

  // create three devices (the SDK's serialiser writes the body)
  const created = [];
  for (const [serialNumber, groupTag] of [['KIOTA-1', 'kiota'], ['KIOTA-2', 'kiota'], ['KIOTA-3', 'kiota']]) {
    const info = request(HttpMethod.POST, LIST);
    info.setContentFromParsable(adapter, 'application/json', { serialNumber, groupTag, hardwareIdentifier: new Uint8Array(80).fill(5).buffer }, models.serializeImportedWindowsAutopilotDeviceIdentity);
    created.push(await adapter.send(info, models.createImportedWindowsAutopilotDeviceIdentityFromDiscriminatorValue, errorMappings));
  }

  // get one, with $select
  const got = await adapter.send(
    request(HttpMethod.GET, ITEM, { 'importedWindowsAutopilotDeviceIdentity%2Did': created[0].id }, { '%24select': ['id', 'serialNumber', 'state'] }),
    models.createImportedWindowsAutopilotDeviceIdentityFromDiscriminatorValue,
    errorMappings,
  );

  // patch one (204 or 200 both fine for Kiota)
  const patch = request(HttpMethod.PATCH, ITEM, { 'importedWindowsAutopilotDeviceIdentity%2Did': created[1].id });
  patch.setContentFromParsable(adapter, 'application/json', { groupTag: 'kiota-patched' }, models.serializeImportedWindowsAutopilotDeviceIdentity);
  await adapter.sendNoResponseContent(patch, errorMappings);

  // $count
  const count = await adapter.sendPrimitive(request(HttpMethod.GET, COUNT, {}, { '%24filter': "startswith(serialNumber,'KIOTA-')" }), 'number', errorMappings);

  // a list, a page at a time (Prefer: odata.maxpagesize=1 → nextLinks), walked by PageIterator
  const list = request(HttpMethod.GET, LIST, {}, { '%24count': true, '%24filter': "startswith(serialNumber,'KIOTA-')", '%24orderby': ['serialNumber'], '%24select': ['id', 'serialNumber', 'groupTag', 'state'] });
  list.headers.tryAdd('Prefer', 'odata.maxpagesize=1');
  const firstPage = await adapter.send(
    list,
    models.createImportedWindowsAutopilotDeviceIdentityCollectionResponseFromDiscriminatorValue,
    errorMappings,
  );
  const walked = [];
  const iterator = new PageIterator(adapter, firstPage, (device) => {
    walked.push({ serialNumber: device.serialNumber, groupTag: device.groupTag, status: device.state?.deviceImportStatus });
    return true;
  }, models.createImportedWindowsAutopilotDeviceIdentityCollectionResponseFromDiscriminatorValue, errorMappings);
  await iterator.iterate();

  // a 404: the error mapping gives the status and Graph's error code
  let notFound;
  try {
    await adapter.send(request(HttpMethod.GET, ITEM, { 'importedWindowsAutopilotDeviceIdentity%2Did': '00000000-0000-0000-0000-000000000000' }), models.createImportedWindowsAutopilotDeviceIdentityFromDiscriminatorValue, errorMappings);
  } catch (err) {
    notFound = { status: err.responseStatusCode, code: err.errorEscaped?.code, message: err.errorEscaped?.message, isODataError: 'errorEscaped' in err };
  }

  console.log(JSON.stringify({
    created: created.map((d) => ({ id: d.id, serialNumber: d.serialNumber, groupTag: d.groupTag, status: d.state?.deviceImportStatus, errorCode: d.state?.deviceErrorCode, hash: Buffer.from(d.hardwareIdentifier ?? []).length })),
    got: { id: got.id, serialNumber: got.serialNumber, groupTag: got.groupTag ?? null, status: got.state?.deviceImportStatus },
    count,
    firstPage: { count: firstPage.odataCount, size: firstPage.value.length, nextLink: firstPage.odataNextLink },
    walked,
    state: iterator.getPagingState(),
    notFound,
    tokens: tokens.length,
  }));
}

main().catch((err) => {
  console.log(JSON.stringify({ failed: String(err?.message ?? err), status: err?.responseStatusCode, stack: err?.stack }));
  process.exitCode = 1;
});
