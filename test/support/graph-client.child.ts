/**
 * Runs the Microsoft Graph JS client (3.0.7) against the service, as a separate Node process so it can trust the
 * service's self-signed certificate the way a user does: NODE_EXTRA_CA_CERTS (the client uses Node's global fetch,
 * which takes no CA of its own). Env: GRAPH_BASE_URL (https://127.0.0.1:PORT/), TOKEN. Prints one JSON line.
 */
import { Client, GraphError, PageIterator, ResponseType } from '@microsoft/microsoft-graph-client';

const LIVE = '/deviceManagement/importedWindowsAutopilotDeviceIdentities';

async function main() {
  const client = Client.init({
    baseUrl: process.env.GRAPH_BASE_URL!,
    defaultVersion: 'beta',
    customHosts: new Set([new URL(process.env.GRAPH_BASE_URL!).hostname]),
    authProvider: (done) => done(null, process.env.TOKEN!),
  });

  // create, as the PowerShell tooling and the docs do (the hash is 64+ bytes, base64)
  const hash = Buffer.alloc(96, 7).toString('base64');
  const created = await client.api(LIVE).post({
    '@odata.type': '#microsoft.graph.importedWindowsAutopilotDeviceIdentity',
    serialNumber: 'GRAPH-JS-1',
    groupTag: 'js',
    hardwareIdentifier: hash,
  });
  await client.api(LIVE).post({ serialNumber: 'GRAPH-JS-2', groupTag: 'js' });

  const got = await client.api(`${LIVE}/${created.id}`).get();
  const patched = await client.api(`${LIVE}/${created.id}`).patch({ groupTag: 'js-patched' });

  // list a page at a time, the client following @odata.nextLink
  const firstPage = await client.api(LIVE).header('Prefer', 'odata.maxpagesize=1').orderby('serialNumber').get();
  const listed: string[] = [];
  await new PageIterator(client, firstPage, (device) => {
    listed.push(device.serialNumber);
    return true;
  }).iterate();

  // the raw response, for its headers
  const raw: Response = await client.api(LIVE).select('id').responseType(ResponseType.RAW).get();

  let notFound: { statusCode: number; code: string | null; requestId: string | null } | undefined;
  try {
    await client.api(`${LIVE}/00000000-0000-0000-0000-000000000000`).get();
  } catch (err) {
    const error = err as GraphError;
    notFound = { statusCode: error.statusCode, code: error.code, requestId: error.requestId };
  }

  console.log(
    JSON.stringify({
      created: { id: created.id, serialNumber: created.serialNumber, hardwareIdentifier: created.hardwareIdentifier, context: created['@odata.context'] },
      got: { id: got.id, groupTag: got.groupTag },
      patched: { groupTag: patched.groupTag },
      firstPage: { count: firstPage.value.length, nextLink: firstPage['@odata.nextLink'] },
      listed,
      raw: { status: raw.status, clientRequestId: raw.headers.get('client-request-id'), requestId: raw.headers.get('request-id') },
      notFound,
    }),
  );
}

main().catch((err) => {
  console.log(JSON.stringify({ failed: String(err?.message ?? err), statusCode: err?.statusCode, code: err?.code }));
  process.exitCode = 1;
});
