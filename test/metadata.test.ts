import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { xml2json } from 'odata-csdl';
import { validateXML } from 'xmllint-wasm';
import { METADATA_FILE, model } from '../src/odata/model';
import { startService, TestService } from './support/service';
import { mutate } from './support/mutate';

/**
 * $metadata is the public contract (SPEC §2, STYLE 1): served byte for byte from metadata/, valid against the OASIS
 * CSDL XSD and JSON schema (both shipped in the npm package odata-csdl), and free of alias-qualified type references.
 */
const METADATA_XML = join(__dirname, '..', 'metadata', 'graph-autopilot.xml');
const SCHEMAS = join(__dirname, '..', 'node_modules', 'odata-csdl', 'schemas');
const fileBytes = readFileSync(METADATA_XML);
const fileText = fileBytes.toString('utf8');

/** Runs the OASIS edmx.xsd (which imports edm.xsd) over a CSDL XML document. */
async function validateCsdlXml(contents: string) {
  return validateXML({
    xml: [{ fileName: 'graph-autopilot.xml', contents }],
    schema: [{ fileName: 'edmx.xsd', contents: readFileSync(join(SCHEMAS, 'edmx.xsd'), 'utf8') }],
    preload: [{ fileName: 'edm.xsd', contents: readFileSync(join(SCHEMAS, 'edm.xsd'), 'utf8') }],
  });
}

const validateCsdlJson = new Ajv({ strict: false, allErrors: true }).compile(JSON.parse(readFileSync(join(SCHEMAS, 'csdl.schema.json'), 'utf8')));


describe('the model source', () => {
  it('is metadata/graph-autopilot.xml, read as is', () => {
    expect(METADATA_FILE).toBe(METADATA_XML);
    expect(model().xml).toBe(fileText);
  });
});

describe('GET /beta/$metadata', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(() => service.close());

  it.each([
    ['no format preference', '$metadata', {}],
    ['Accept: application/xml', '$metadata', { Accept: 'application/xml' }],
    ['$format=xml', '$metadata?$format=xml', {}],
    ['$format=xml over Accept: application/json', '$metadata?$format=xml', { Accept: 'application/json' }],
  ])('serves the bytes of metadata/graph-autopilot.xml (%s)', async (_case, path, headers) => {
    // act: raw fetch, because the helper decodes the body to text (which would hide a BOM or re-encoding)
    const res = await fetch(`${service.root}/${path}`, { headers });
    const body = Buffer.from(await res.arrayBuffer());

    // assert
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/xml');
    expect(res.headers.get('odata-version')).toBe('4.0');
    expect(body.equals(fileBytes)).toBe(true);
    expect(res.headers.get('content-length')).toBe(String(fileBytes.length));
  });

  it.each([
    ['$format=json', '$metadata?$format=json', {}],
    ['Accept: application/json', '$metadata', { Accept: 'application/json' }],
  ])('serves the JSON CSDL that odata-csdl converts the file to (%s)', async (_case, path, headers) => {
    const res = await service.get(path, { headers });

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('odata-version')).toBe('4.0');
    expect(res.body).toEqual(xml2json(fileText, { strict: true }));
  });

  it.each([
    ['application/json, application/xml', 'application/json'],
    ['application/xml, application/json', 'application/xml'],
    // RFC 9110 §12.5.1: the q weight ranks media ranges, not their order in the header
    ['application/xml;q=0.1, application/json', 'application/json'],
    ['application/json;q=0.5, */*;q=0.8', 'application/xml'],
    ['text/html, application/json;q=0.9', 'application/json'],
  ])('answers Accept: %s with %s', async (accept, contentType) => {
    const res = await service.get('$metadata', { headers: { Accept: accept } });

    expect({ status: res.status, contentType: res.headers.get('content-type') }).toEqual({ status: 200, contentType });
  });

  it.each([
    ['Accept: text/html', '$metadata', { Accept: 'text/html' }],
    ['$format=atom', '$metadata?$format=atom', {}],
  ])('refuses %s with 406', async (_case, path, headers) => {
    const res = await service.get(path, { headers });

    expect(res.status).toBe(406);
    expect(res.headers.get('odata-version')).toBe('4.0');
  });
});

describe('metadata/graph-autopilot.xml against the OASIS CSDL XML schema (edmx.xsd + edm.xsd)', () => {
  it('is valid', async () => {
    const result = await validateCsdlXml(fileText);

    expect(result.errors).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it.each([
    [
      'ContainsTarget="yes"',
      'Type="Collection(microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload)" ContainsTarget="true"',
      'Type="Collection(microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload)" ContainsTarget="yes"',
      /ContainsTarget.*'yes' is not a valid value/],
    ['an EntityContainer without Name', '<EntityContainer Name="GraphService">', '<EntityContainer>', /EntityContainer.*attribute 'Name' is required/],
    ['a non-integer enum value', '<Member Name="error" Value="4">', '<Member Name="error" Value="four">', /Value.*'four' is not a valid value/],
  ])('rejects a copy with %s (negative control)', async (_case, from, to, message) => {
    const result = await validateCsdlXml(mutate(fileText, from, to));

    expect(result.valid).toBe(false);
    expect(result.errors.map((e) => e.message).join('\n')).toMatch(message);
  });
});

describe('JSON CSDL against the OASIS CSDL JSON schema (csdl.schema.json)', () => {
  let service: TestService;
  beforeAll(async () => {
    service = await startService();
  });
  afterAll(() => service.close());

  it('is valid as served', async () => {
    const res = await service.get('$metadata?$format=json');

    expect(validateCsdlJson(res.body) ? [] : validateCsdlJson.errors).toEqual([]);
  });

  it('rejects a copy with "$Abstract": "yes" (negative control)', async () => {
    const res = await service.get('$metadata?$format=json');
    res.body['microsoft.graph'].entity.$Abstract = 'yes';

    expect(validateCsdlJson(res.body)).toBe(false);
    expect(validateCsdlJson.errors).toContainEqual(
      expect.objectContaining({ instancePath: '/microsoft.graph/entity/$Abstract', message: 'must be boolean' }),
    );
  });
});

// --- type references -------------------------------------------------------------------------------------------

/** The attributes of CSDL XML that hold a qualified type name (CSDL-XML 4.01 §§ 6–13). */
const TYPE_REFERENCE_ATTRIBUTES: Record<string, string[]> = {
  EntityType: ['BaseType'],
  ComplexType: ['BaseType'],
  TypeDefinition: ['UnderlyingType'],
  EnumType: ['UnderlyingType'],
  Property: ['Type'],
  NavigationProperty: ['Type'],
  Parameter: ['Type'],
  ReturnType: ['Type'],
  Term: ['Type', 'BaseTerm'],
  EntitySet: ['EntityType'],
  Singleton: ['Type'],
  ActionImport: ['Action'],
  FunctionImport: ['Function'],
};

const PRIMITIVES = new Set(['Binary', 'Boolean', 'Byte', 'Date', 'DateTimeOffset', 'Decimal', 'Double', 'Duration', 'Guid', 'Int16', 'Int32', 'Int64', 'SByte', 'Single', 'Stream', 'String', 'TimeOfDay', 'Untyped', 'PrimitiveType', 'ComplexType', 'EntityType']);

interface XmlElement {
  local: string;
  attributes: Record<string, string>;
  /** Qualified name for schema children (types, operations, container), else undefined. */
  qualifiedName?: string;
}

/** Every element of a CSDL XML document, in document order, with the qualified names it declares. */
function elements(xml: string): XmlElement[] {
  // sax is odata-csdl's XML parser; it is not a direct dependency, npm hoists it to node_modules/sax.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sax = require('sax') as { parser(strict: boolean): SaxParser };
  const parser = sax.parser(true);
  const out: XmlElement[] = [];
  const stack: XmlElement[] = [];
  let namespace = '';
  parser.onerror = (e) => {
    throw e;
  };
  parser.onopentag = (node) => {
    const local = node.name.slice(node.name.indexOf(':') + 1);
    const element: XmlElement = { local, attributes: node.attributes };
    if (local === 'Schema') namespace = node.attributes.Namespace;
    if (stack[stack.length - 1]?.local === 'Schema' && node.attributes.Name) element.qualifiedName = `${namespace}.${node.attributes.Name}`;
    out.push(element);
    stack.push(element);
  };
  parser.onclosetag = () => {
    stack.pop();
  };
  parser.write(xml).close();
  return out;
}

interface SaxParser {
  onerror: (e: Error) => void;
  onopentag: (node: { name: string; attributes: Record<string, string> }) => void;
  onclosetag: (name: string) => void;
  write(xml: string): SaxParser;
  close(): SaxParser;
}

/**
 * Problems with the type references of a CSDL XML document: alias-qualified references (legal CSDL, but
 * @sap-cloud-sdk/generator fails on them, conformance note §1.8/§3) and references to nothing (which the XSD lets
 * through, conformance note §1.8).
 */
function typeReferenceProblems(xml: string): string[] {
  const all = elements(xml);
  const namespaces = new Set(all.filter((e) => e.local === 'Schema' || e.local === 'Include').map((e) => e.attributes.Namespace));
  const aliases = new Set(all.filter((e) => (e.local === 'Schema' || e.local === 'Include') && e.attributes.Alias).map((e) => e.attributes.Alias));
  const declared = new Set(all.map((e) => e.qualifiedName).filter((n): n is string => n !== undefined));
  const problems: string[] = [];
  for (const element of all) {
    for (const attribute of TYPE_REFERENCE_ATTRIBUTES[element.local] ?? []) {
      const reference = element.attributes[attribute];
      if (reference === undefined) continue;
      const name = reference.startsWith('Collection(') && reference.endsWith(')') ? reference.slice('Collection('.length, -1) : reference;
      const qualifier = name.slice(0, name.lastIndexOf('.'));
      const where = `${element.local} ${element.attributes.Name ?? ''} ${attribute}="${reference}"`.replace('  ', ' ');
      if (aliases.has(qualifier)) problems.push(`${where}: alias-qualified; use ${[...namespaces].find((n) => n !== 'Edm' && !n.startsWith('Org.')) ?? 'the namespace'}`);
      else if (qualifier === 'Edm' ? !PRIMITIVES.has(name.slice(4)) : !declared.has(name)) problems.push(`${where}: no such type`);
    }
  }
  return problems;
}

describe('type references in metadata/graph-autopilot.xml', () => {
  it('are all namespace-qualified and resolve to a declared or Edm type', () => {
    expect(typeReferenceProblems(fileText)).toEqual([]);
  });

  it('actually checks the document: Type/BaseType attributes are there to check', () => {
    const references = elements(fileText).filter((e) => e.attributes.Type !== undefined || e.attributes.BaseType !== undefined);

    expect(references.length).toBeGreaterThanOrEqual(20);
  });

  it.each([
    [
      'an alias-qualified property type',
      'Type="microsoft.graph.importedWindowsAutopilotDeviceIdentityState"',
      'Type="graph.importedWindowsAutopilotDeviceIdentityState"',
      'Property state Type="graph.importedWindowsAutopilotDeviceIdentityState": alias-qualified; use microsoft.graph',
    ],
    [
      'an alias-qualified base type',
      '<EntityType Name="deviceManagement" BaseType="microsoft.graph.entity">',
      '<EntityType Name="deviceManagement" BaseType="graph.entity">',
      'EntityType deviceManagement BaseType="graph.entity": alias-qualified; use microsoft.graph',
    ],
    [
      'an alias-qualified collection',
      'Type="Collection(microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload)"',
      'Type="Collection(graph.importedWindowsAutopilotDeviceIdentityUpload)"',
      'NavigationProperty importedWindowsAutopilotDeviceIdentityUploads Type="Collection(graph.importedWindowsAutopilotDeviceIdentityUpload)": alias-qualified; use microsoft.graph',
    ],
    [
      'a reference to nothing',
      'Type="microsoft.graph.deviceManagement"',
      'Type="microsoft.graph.deviceManagment"',
      'Singleton deviceManagement Type="microsoft.graph.deviceManagment": no such type',
    ],
    ['an unknown primitive', '<ReturnType Type="Edm.String"', '<ReturnType Type="Edm.Text"', 'ReturnType Type="Edm.Text": no such type'],
  ])('reports %s (negative control)', (_case, from, to, problem) => {
    expect(typeReferenceProblems(mutate(fileText, from, to))).toEqual([problem]);
  });
});
