import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { xml2json } from 'odata-csdl';
import { loadModel } from '../src/odata/model';
import { startService, TestService } from './support/service';
import { mutate } from './support/mutate';

/**
 * The served model equals Graph's CSDL (SPEC §2). test/fixtures/graph-csdl-fragments.xml holds Graph's own CSDL
 * lines, one <section> per source: A v1.0 today, B beta today, C beta 2019-07 (the last with the uploads navigation
 * and autopilotDeviceStream). test/fixtures/graph-csdl-registered-devices.xml (a verbatim copy of
 * ../shared/reference/graph-csdl-registered-devices.xml) adds the registered devices and Autopilot settings: <Section>s
 * B1–B9 from today's beta, V1 from today's v1.0. The service serves their union less what LEFT_OUT names, so every
 * other fact of every section must hold in $metadata, nothing may be added to Graph's types, and every description
 * must be one of Graph's texts for that target.
 */
const METADATA_XML = join(__dirname, '..', 'metadata', 'graph-autopilot.xml');
const FRAGMENTS_XML = join(__dirname, 'fixtures', 'graph-csdl-fragments.xml');
const REGISTERED_XML = join(__dirname, 'fixtures', 'graph-csdl-registered-devices.xml');
const NS = 'microsoft.graph';
/** Section keys of the registered-devices file: its Section ids, prefixed. */
const REGISTERED = 'registered-devices';

/** Descriptions that are not in Graph's CSDL, with where they come from. */
const NOT_FROM_GRAPH_CSDL: Record<string, string> = {
  // The function's description on its Graph docs page (api-reference/beta/api/intune-enrollment-importedwindowsautopilotdeviceidentityupload-autopilotdevicestream.md, sic).
  [`${NS}.autopilotDeviceStream`]: 'Create a upload request with autopilot device stream in it.',
  // The action's description on its Graph docs page (api-reference/beta/api/intune-enrollment-windowsautopilotdeviceidentity-allownextenrollment.md);
  // its Annotations block was not located in the beta CSDL (graph-csdl-registered-devices.xml, section B8).
  [`${NS}.allowNextEnrollment`]: 'Unblocks next autopilot enrollment.',
  // This service's own singleton (SPEC §3, S2): Graph has no such container member.
  [`${NS}.GraphService/importedWindowsAutopilotDeviceIdentityUpload`]:
    "The tenant's default upload: the document surface of the seed page (PATCH /importedWindowsAutopilotDeviceIdentityUpload/deviceIdentities).",
};
/**
 * Graph facts the service leaves out, keyed as the facts are (a member of a type whose opening tag the fragment lacks
 * is `/name`), each with the section that declares it and the reason. SPEC §2: the deployment-profile navigations are
 * out of scope, and with them everything only they need; SPEC §3 names the registered device's actions. Every entry must
 * exist in its section (a stale entry fails). It is left out of every registered-devices section (its descriptions and
 * enum members too), or of its own section only when `onlyThere`.
 */
const LEFT_OUT: { section: string; kind: 'member' | 'operation' | 'type'; key: string; why: string; onlyThere?: true }[] = [
  { section: `${REGISTERED} B1`, kind: 'member', key: `${NS}.windowsAutopilotDeviceIdentity/deploymentProfile`, why: 'deployment-profile navigation (SPEC §2)' },
  { section: `${REGISTERED} B1`, kind: 'member', key: `${NS}.windowsAutopilotDeviceIdentity/intendedDeploymentProfile`, why: 'deployment-profile navigation (SPEC §2)' },
  { section: `${REGISTERED} B4`, kind: 'member', key: '/windowsAutopilotDeploymentProfiles', why: 'deployment-profile navigation (SPEC §2)' },
  { section: `${REGISTERED} B5`, kind: 'operation', key: `${NS}.assign`, why: 'bound to windowsAutopilotDeploymentProfile' },
  { section: `${REGISTERED} B5`, kind: 'operation', key: `${NS}.assignResourceAccountToDevice`, why: 'not among the actions SPEC §3 serves' },
  { section: `${REGISTERED} B7`, kind: 'operation', key: `${NS}.unassignResourceAccountFromDevice`, why: 'not among the actions SPEC §3 serves' },
  { section: `${REGISTERED} B3`, kind: 'type', key: `${NS}.windowsAutopilotDeploymentState`, why: 'no served property uses it' },
  { section: `${REGISTERED} B3`, kind: 'type', key: `${NS}.windowsAutopilotDeviceType`, why: 'no served property uses it' },
  { section: `${REGISTERED} B3`, kind: 'type', key: `${NS}.windowsAutopilotEnrollmentType`, why: 'no served property uses it' },
  // v1.0's overload has 4 parameters; the service serves beta's 7 (SPEC §2: "exactly as Graph's beta CSDL declares them").
  { section: `${REGISTERED} V1`, kind: 'operation', key: `${NS}.updateDeviceProperties`, why: "v1.0's 4-parameter overload; beta's is served", onlyThere: true },
];

/** The sections less LEFT_OUT: its members, operations and types, with their members, descriptions and signatures. */
function withoutLeftOut(all: Map<string, Facts>): Map<string, Facts> {
  const out = new Map<string, Facts>();
  for (const [source, facts] of all) {
    const gone = LEFT_OUT.filter((l) => l.section === source || (!l.onlyThere && source.startsWith(`${REGISTERED} `)));
    const dropped = (key: string) =>
      gone.some((l) => key === l.key || (l.kind !== 'member' && (key.startsWith(`${l.key}/`) || key.startsWith(`${l.key}(`))));
    const keep = <T>(record: Record<string, T>) => Object.fromEntries(Object.entries(record).filter(([k]) => !dropped(k)));
    out.set(source, {
      types: keep(facts.types),
      members: keep(facts.members),
      operations: keep(facts.operations),
      singletons: facts.singletons,
      descriptions: keep(facts.descriptions),
      signatures: keep(facts.signatures),
    });
  }
  return out;
}

/** Container members this service adds to Graph's (SPEC §2/§3 S2). */
const SERVICE_SINGLETONS: Record<string, string> = { importedWindowsAutopilotDeviceIdentityUpload: `${NS}.importedWindowsAutopilotDeviceIdentityUpload` };

// --- one neutral shape for both sides ---------------------------------------------------------------------------

interface TypeFacts {
  kind: 'EntityType' | 'ComplexType' | 'EnumType';
  abstract: boolean;
  baseType: string | null;
  /** The key the type declares itself (null: none declared). */
  key: string[] | null;
}

/** A property, navigation property or enum member, keyed `namespace.type/name`. Nullable is left out for collections. */
interface MemberFacts {
  kind: 'Property' | 'NavigationProperty' | 'Member';
  type?: string;
  nullable?: boolean;
  containsTarget?: boolean;
  value?: number;
}

interface ParameterFacts {
  name: string;
  type: string;
  nullable?: boolean;
}

interface OperationFacts {
  kind: 'Function' | 'Action';
  isBound: boolean;
  isComposable: boolean;
  parameters: ParameterFacts[];
  returnType: { type: string; nullable?: boolean; unicode: boolean } | null;
}

interface Facts {
  types: Record<string, TypeFacts>;
  members: Record<string, MemberFacts>;
  operations: Record<string, OperationFacts>;
  /** Singleton name → qualified type. */
  singletons: Record<string, string>;
  /** Target (`namespace.type`, `namespace.type/member`, `namespace.operation`, `namespace.container/child`) → Core.Description texts. */
  descriptions: Record<string, string[]>;
  /**
   * Operation → the parameter types of the overload an out-of-line annotation names (`Target="ns.op(ns.type, Edm.String)"`):
   * such a description counts for `ns.op`, and the served operation must be that overload.
   */
  signatures: Record<string, string[]>;
}

const emptyFacts = (): Facts => ({ types: {}, members: {}, operations: {}, singletons: {}, descriptions: {}, signatures: {} });
const isCollection = (type: string) => type.startsWith('Collection(');

function addDescription(facts: Facts, target: string, text: string) {
  const texts = (facts.descriptions[target] ??= []);
  if (!texts.includes(text)) texts.push(text);
}

// --- CSDL XML → facts (a plain sax walk, independent of odata-csdl's conversion) ---------------------------------

interface SaxParser {
  onerror: (e: Error) => void;
  onopentag: (node: { name: string; attributes: Record<string, string> }) => void;
  onclosetag: (name: string) => void;
  write(xml: string): SaxParser;
  close(): SaxParser;
}

/**
 * Reads CSDL XML into facts: the whole document under key '', or one entry per <section source=…> of the fragments
 * file. Elements outside a Schema (the fragments) are read as if in Schema microsoft.graph, alias graph. A member
 * outside any type (section B's deviceManagement navigation, whose opening tag was not captured) is keyed `/name`.
 */
function factsFromXml(xml: string): Map<string, Facts> {
  // sax is odata-csdl's XML parser; it is not a direct dependency, npm hoists it to node_modules/sax.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sax = require('sax') as { parser(strict: boolean): SaxParser };
  const parser = sax.parser(true);
  const bySection = new Map<string, Facts>();
  let facts = emptyFacts();
  bySection.set('', facts);
  let namespace = NS;
  const aliases: Record<string, string> = { graph: NS };
  const qualify = (ref: string): string => {
    if (isCollection(ref)) return `Collection(${qualify(ref.slice('Collection('.length, -1))})`;
    const dot = ref.lastIndexOf('.');
    const qualifier = ref.slice(0, dot);
    return aliases[qualifier] ? `${aliases[qualifier]}${ref.slice(dot)}` : ref;
  };
  const qualifyTarget = (target: string) => target.split('/').map((part, i) => (i === 0 ? qualify(part) : part)).join('/');
  /** Per open element: the annotation target it establishes (or inherits), and the type or operation it belongs to. */
  const stack: { target: string | null; owner: string | null }[] = [];

  parser.onerror = (e) => {
    throw e;
  };
  parser.onopentag = ({ name, attributes: a }) => {
    const local = name.slice(name.indexOf(':') + 1);
    const parent = stack[stack.length - 1] ?? { target: null, owner: null };
    let frame = { target: parent.target, owner: parent.owner };
    switch (local) {
      case 'section': // graph-csdl-fragments.xml
      case 'Section': // graph-csdl-registered-devices.xml
        facts = emptyFacts();
        bySection.set(a.source ?? `${REGISTERED} ${a.id}`, facts);
        break;
      case 'Schema':
        namespace = a.Namespace;
        if (a.Alias) aliases[a.Alias] = a.Namespace;
        break;
      case 'Include':
        if (a.Alias) aliases[a.Alias] = a.Namespace;
        break;
      case 'EntityType':
      case 'ComplexType':
      case 'EnumType': {
        const q = `${namespace}.${a.Name}`;
        facts.types[q] = { kind: local, abstract: a.Abstract === 'true', baseType: a.BaseType ? qualify(a.BaseType) : null, key: null };
        frame = { target: q, owner: q };
        break;
      }
      case 'PropertyRef':
        (facts.types[parent.owner!].key ??= []).push(a.Name);
        break;
      case 'Property':
      case 'NavigationProperty': {
        const key = `${parent.owner ?? ''}/${a.Name}`;
        const type = qualify(a.Type);
        const member: MemberFacts = { kind: local, type };
        if (!isCollection(type)) member.nullable = a.Nullable !== 'false';
        if (local === 'NavigationProperty') member.containsTarget = a.ContainsTarget === 'true';
        facts.members[key] = member;
        frame = { target: key, owner: parent.owner };
        break;
      }
      case 'Member': {
        const key = `${parent.owner}/${a.Name}`;
        facts.members[key] = { kind: 'Member', value: Number(a.Value) };
        frame = { target: key, owner: parent.owner };
        break;
      }
      case 'Function':
      case 'Action': {
        const q = `${namespace}.${a.Name}`;
        facts.operations[q] = { kind: local, isBound: a.IsBound === 'true', isComposable: a.IsComposable === 'true', parameters: [], returnType: null };
        frame = { target: q, owner: q };
        break;
      }
      case 'Parameter': {
        const type = qualify(a.Type ?? 'Edm.String');
        const parameter: ParameterFacts = { name: a.Name, type };
        if (!isCollection(type)) parameter.nullable = a.Nullable !== 'false';
        facts.operations[parent.owner!].parameters.push(parameter);
        frame = { target: `${parent.owner}/${a.Name}`, owner: parent.owner };
        break;
      }
      case 'ReturnType': {
        const type = qualify(a.Type ?? 'Edm.String');
        facts.operations[parent.owner!].returnType = {
          type,
          ...(isCollection(type) ? {} : { nullable: a.Nullable !== 'false' }),
          unicode: a.Unicode !== 'false',
        };
        frame = { target: `${parent.owner}/$ReturnType`, owner: parent.owner };
        break;
      }
      case 'EntityContainer': {
        const q = `${namespace}.${a.Name}`;
        frame = { target: q, owner: q };
        break;
      }
      case 'Singleton':
        facts.singletons[a.Name] = qualify(a.Type);
        frame = { target: `${parent.owner}/${a.Name}`, owner: parent.owner };
        break;
      case 'Annotations': {
        // An operation overload, `ns.op(ns.binding, Edm.String)` (Graph writes a space after each comma): its
        // description belongs to `ns.op`; the parameter types are kept to check against the served operation.
        const overload = /^([^(/]+)\((.*)\)$/.exec(a.Target);
        if (overload) {
          const operation = qualify(overload[1]);
          facts.signatures[operation] = overload[2].split(',').map((t) => qualify(t.trim()));
          frame = { target: operation, owner: null };
        } else frame = { target: qualifyTarget(a.Target), owner: null };
        break;
      }
      case 'Annotation':
        if (qualify(a.Term) === 'Org.OData.Core.V1.Description' && parent.target !== null) addDescription(facts, parent.target, a.String);
        frame = { target: null, owner: null };
        break;
    }
    stack.push(frame);
  };
  parser.onclosetag = () => {
    stack.pop();
  };
  parser.write(xml).close();
  return bySection;
}

// --- JSON CSDL → facts (what clients and src/odata/model.ts read) ------------------------------------------------

type Json = Record<string, any>;

function description(node: Json, prefix = ''): string | undefined {
  return node[`${prefix}@Core.Description`] ?? node[`${prefix}@Org.OData.Core.V1.Description`];
}

function factsFromJson(csdl: Json): Facts {
  const facts = emptyFacts();
  for (const [namespace, schema] of Object.entries(csdl) as [string, Json][]) {
    if (namespace.startsWith('$')) continue;
    const alias: string | undefined = schema.$Alias;
    const qualify = (ref: string) => (alias && ref.startsWith(`${alias}.`) ? `${namespace}.${ref.slice(alias.length + 1)}` : ref);
    const typeOf = (node: Json) => {
      const type = qualify(node.$Type ?? 'Edm.String');
      return node.$Collection === true ? `Collection(${type})` : type;
    };
    const describe = (target: string, node: Json, prefix = '') => {
      const text = description(node, prefix);
      if (text !== undefined) addDescription(facts, target, text);
    };

    for (const [name, def] of Object.entries<any>(schema)) {
      if (name.startsWith('$') || name.startsWith('@')) continue;
      const q = `${namespace}.${name}`;
      if (Array.isArray(def)) {
        expect(def).toHaveLength(1); // no overloads in this model
        const [op] = def as Json[];
        facts.operations[q] = {
          kind: op.$Kind,
          isBound: op.$IsBound === true,
          isComposable: op.$IsComposable === true,
          parameters: (op.$Parameter ?? []).map((p: Json) => {
            const type = typeOf(p);
            return isCollection(type) ? { name: p.$Name, type } : { name: p.$Name, type, nullable: p.$Nullable === true };
          }),
          returnType: op.$ReturnType
            ? {
                type: typeOf(op.$ReturnType),
                ...(isCollection(typeOf(op.$ReturnType)) ? {} : { nullable: op.$ReturnType.$Nullable === true }),
                unicode: op.$ReturnType.$Unicode !== false,
              }
            : null,
        };
        describe(q, op);
        continue;
      }
      if (def.$Kind === 'EntityContainer') {
        for (const [child, member] of Object.entries<Json>(def)) {
          if (child.startsWith('$') || child.includes('@')) continue;
          if (member.$Collection !== true && member.$Type) facts.singletons[child] = qualify(member.$Type);
          describe(`${q}/${child}`, member);
        }
        continue;
      }
      facts.types[q] = { kind: def.$Kind, abstract: def.$Abstract === true, baseType: def.$BaseType ? qualify(def.$BaseType) : null, key: def.$Key ?? null };
      describe(q, def);
      for (const [memberName, member] of Object.entries<any>(def)) {
        if (memberName.startsWith('$') || memberName.includes('@')) continue;
        const key = `${q}/${memberName}`;
        if (def.$Kind === 'EnumType') {
          facts.members[key] = { kind: 'Member', value: member };
          describe(key, def, memberName);
          continue;
        }
        const type = typeOf(member);
        const facet: MemberFacts = { kind: member.$Kind ?? 'Property', type };
        if (!isCollection(type)) facet.nullable = member.$Nullable === true;
        if (facet.kind === 'NavigationProperty') facet.containsTarget = member.$ContainsTarget === true;
        facts.members[key] = facet;
        describe(key, member);
      }
    }
  }
  return facts;
}

// --- the comparison ----------------------------------------------------------------------------------------------

const show = (value: unknown) => JSON.stringify(value);
const ownerOf = (key: string) => key.slice(0, key.indexOf('/'));

/** Everything in which `served` differs from Graph's sections; [] when it is their union. */
function differencesFromGraph(served: Facts, sections: Map<string, Facts>): string[] {
  const problems: string[] = [];
  const graph = [...sections].filter(([source]) => source !== '');
  const graphTypes = new Set(graph.flatMap(([, s]) => Object.keys(s.types)));
  const graphOperations = new Set(graph.flatMap(([, s]) => Object.keys(s.operations)));

  for (const [source, section] of graph) {
    for (const [name, type] of Object.entries(section.types)) {
      const mine = served.types[name];
      if (!mine) {
        problems.push(`${name}: missing (in ${source})`);
        continue;
      }
      const theirs = { ...type, key: type.key ?? mine.key }; // a fragment that does not show the key says nothing about it
      if (show(mine) !== show(theirs)) problems.push(`${name}: served ${show(mine)}, ${source} has ${show(theirs)}`);
    }
    for (const [key, member] of Object.entries(section.members)) {
      const candidates = key.startsWith('/') ? Object.keys(served.members).filter((k) => k.endsWith(key)) : [key];
      const matches = candidates.filter((k) => served.members[k] !== undefined);
      if (matches.length === 0) problems.push(`${key}: missing (in ${source})`);
      else if (!matches.some((k) => show(served.members[k]) === show(member))) {
        problems.push(`${matches[0]}: served ${show(served.members[matches[0]])}, ${source} has ${show(member)}`);
      }
    }
    for (const [name, operation] of Object.entries(section.operations)) {
      if (!served.operations[name]) problems.push(`${name}: missing (in ${source})`);
      else if (show(served.operations[name]) !== show(operation)) {
        problems.push(`${name}: served ${show(served.operations[name])}, ${source} has ${show(operation)}`);
      }
    }
    for (const [name, type] of Object.entries(section.singletons)) {
      if (served.singletons[name] !== type) problems.push(`singleton ${name}: served ${served.singletons[name]}, ${source} has ${type}`);
    }
    for (const [name, types] of Object.entries(section.signatures)) {
      const servedTypes = served.operations[name]?.parameters.map((p) => p.type);
      if (servedTypes && show(servedTypes) !== show(types)) problems.push(`${name}: served overload ${show(servedTypes)}, ${source} describes ${show(types)}`);
    }
  }

  // nothing beyond the union
  for (const name of Object.keys(served.types)) if (!graphTypes.has(name)) problems.push(`${name}: not a type of any Graph section`);
  for (const name of Object.keys(served.operations)) if (!graphOperations.has(name)) problems.push(`${name}: not an operation of any Graph section`);
  for (const key of Object.keys(served.members)) {
    const inGraph = graph.some(([, s]) => s.members[key] !== undefined || (ownerOf(key) === `${NS}.deviceManagement` && s.members[key.slice(key.indexOf('/'))] !== undefined));
    if (!inGraph) problems.push(`${key}: not a member of ${ownerOf(key)} in any Graph section`);
  }
  for (const [name, type] of Object.entries(served.singletons)) {
    if (!graph.some(([, s]) => s.singletons[name] === type) && SERVICE_SINGLETONS[name] !== type) problems.push(`singleton ${name}: not in any Graph section`);
  }

  // descriptions: Graph's texts, and none of them dropped
  const graphTexts = new Map<string, Set<string>>();
  for (const [, section] of graph) {
    for (const [target, texts] of Object.entries(section.descriptions)) {
      graphTexts.set(target, new Set([...(graphTexts.get(target) ?? []), ...texts]));
    }
  }
  for (const [target, texts] of Object.entries(served.descriptions)) {
    const allowed = graphTexts.get(target) ?? new Set(NOT_FROM_GRAPH_CSDL[target] === undefined ? [] : [NOT_FROM_GRAPH_CSDL[target]]);
    if (texts.length !== 1) problems.push(`${target}: ${texts.length} descriptions`);
    for (const text of texts) if (!allowed.has(text)) problems.push(`${target}: description ${show(text)} is none of Graph's ${show([...allowed])}`);
  }
  for (const target of graphTexts.keys()) if (!served.descriptions[target]) problems.push(`${target}: Graph's description is missing`);
  return problems;
}

// --- tests -------------------------------------------------------------------------------------------------------

const fileText = readFileSync(METADATA_XML, 'utf8');
const allSections = new Map([...factsFromXml(readFileSync(FRAGMENTS_XML, 'utf8')), ...factsFromXml(readFileSync(REGISTERED_XML, 'utf8'))]);
/** Graph's facts the service must serve: every section of both fixture files, less LEFT_OUT. */
const sections = withoutLeftOut(allSections);


describe('the fragments files (test/fixtures/graph-csdl-fragments.xml, graph-csdl-registered-devices.xml)', () => {
  it('read as the three Graph sections A, B and C, then the registered-device sections B1–B9 and V1', () => {
    expect([...sections.keys()]).toEqual([
      '',
      'msgraph-metadata@f54f11b6:clean_v10_metadata/cleanMetadata.xml',
      'msgraph-metadata@bd05c95e:clean_beta_metadata/cleanMetadataWithDescriptionsAndAnnotationsbeta.xml',
      'msgraph-metadata@84624d37:clean_beta_metadata/cleanMetadataWithDescriptionsbeta.xml',
      ...['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B9', 'V1'].map((id) => `${REGISTERED} ${id}`),
    ]);
    expect(sections.get('')).toEqual(emptyFacts());
  });

  it('yields the registered-device facts the comparison relies on (spot checks of the walk)', () => {
    const section = (id: string) => allSections.get(`${REGISTERED} ${id}`)!;

    expect(Object.keys(section('B1').members).filter((k) => k.startsWith(`${NS}.windowsAutopilotDeviceIdentity/`))).toHaveLength(28);
    expect(section('B1').members[`${NS}.windowsAutopilotDeviceIdentity/enrollmentState`]).toEqual({
      kind: 'Property',
      type: `${NS}.enrollmentState`,
      nullable: false,
    });
    expect(section('B4').members['/windowsAutopilotSettings']).toEqual({
      kind: 'NavigationProperty',
      type: `${NS}.windowsAutopilotSettings`,
      nullable: true,
      containsTarget: true,
    });
    // an overload's annotation (Graph writes a space after each comma) describes the operation, and names its parameters
    expect(section('B8').descriptions[`${NS}.sync`]).toEqual([expect.stringMatching(/^Initiates a sync of all AutoPilot registered devices/)]);
    expect(section('B8').signatures[`${NS}.updateDeviceProperties`]).toEqual([`${NS}.windowsAutopilotDeviceIdentity`, ...Array(7).fill('Edm.String')]);
    expect(section('V1').signatures[`${NS}.updateDeviceProperties`]).toHaveLength(5);
    expect(section('V1').descriptions[`${NS}.enrollmentState/notContacted`]).toEqual(['Device is imported but not enrolled.']);
  });

  it.each(LEFT_OUT.map((l) => [l.key, l.section, l]))('leaves out %s of %s, which is there to leave out', (_key, _section, l) => {
    const facts = allSections.get(l.section)!;
    const record = l.kind === 'member' ? facts.members : l.kind === 'operation' ? facts.operations : facts.types;

    expect(record[l.key]).toBeDefined();
    expect(sections.get(l.section)![l.kind === 'member' ? 'members' : l.kind === 'operation' ? 'operations' : 'types'][l.key]).toBeUndefined();
  });

  it('yields the facts the comparison relies on (spot checks of the walk)', () => {
    const [a, b, c] = [...sections.values()].slice(1);

    expect(a.members[`${NS}.importedWindowsAutopilotDeviceIdentityState/deviceImportStatus`]).toEqual({
      kind: 'Property',
      type: `${NS}.importedWindowsAutopilotDeviceIdentityImportStatus`,
      nullable: false,
    });
    expect(b.members['/importedWindowsAutopilotDeviceIdentities']).toEqual({
      kind: 'NavigationProperty',
      type: `Collection(${NS}.importedWindowsAutopilotDeviceIdentity)`,
      containsTarget: true,
    });
    expect(c.types[`${NS}.entity`]).toEqual({ kind: 'EntityType', abstract: true, baseType: null, key: ['id'] });
    // section C states the status description twice: inline with the values, out of line without
    expect(c.descriptions[`${NS}.importedWindowsAutopilotDeviceIdentityUpload/status`]).toEqual([
      'Upload status. Possible values are: noUpload, pending, complete, error.',
      'Upload status.',
    ]);
    expect(Object.keys(c.members).filter((k) => k.startsWith(`${NS}.importedWindowsAutopilotDeviceIdentity/`))).toHaveLength(7);
  });
});

describe('$metadata equals Graph CSDL', () => {
  let service: TestService;
  let served: Facts;
  beforeAll(async () => {
    service = await startService();
    served = factsFromJson((await service.get('$metadata?$format=json')).body);
  });
  afterAll(() => service.close());

  it('has every fact of every Graph section, nothing more, and only Graph descriptions', () => {
    expect(differencesFromGraph(served, sections)).toEqual([]);
  });

  it('says in XML what it says in JSON', () => {
    expect(factsFromXml(fileText).get('')).toEqual(served);
  });

  it('is the union: v1.0/beta properties (groupTag) and 2019 beta ones (orderIdentifier, uploads, autopilotDeviceStream)', () => {
    const device = Object.keys(served.members).filter((k) => k.startsWith(`${NS}.importedWindowsAutopilotDeviceIdentity/`));

    expect(device.map((k) => k.slice(k.indexOf('/') + 1)).sort()).toEqual(
      ['assignedUserPrincipalName', 'groupTag', 'hardwareIdentifier', 'importId', 'orderIdentifier', 'productKey', 'serialNumber', 'state'],
    );
    expect(served.members[`${NS}.deviceManagement/importedWindowsAutopilotDeviceIdentityUploads`]).toEqual({
      kind: 'NavigationProperty',
      type: `Collection(${NS}.importedWindowsAutopilotDeviceIdentityUpload)`,
      containsTarget: true,
    });
    expect(served.operations[`${NS}.autopilotDeviceStream`]).toEqual({
      kind: 'Function',
      isBound: true,
      isComposable: true,
      parameters: [{ name: 'bindingParameter', type: `${NS}.importedWindowsAutopilotDeviceIdentityUpload`, nullable: true }],
      returnType: { type: 'Edm.String', nullable: true, unicode: false },
    });
    expect(served.operations[`${NS}.import`]).toEqual({
      kind: 'Action',
      isBound: true,
      isComposable: false,
      parameters: [
        { name: 'bindingParameter', type: `Collection(${NS}.importedWindowsAutopilotDeviceIdentity)` },
        { name: 'importedWindowsAutopilotDeviceIdentities', type: `Collection(${NS}.importedWindowsAutopilotDeviceIdentity)` },
      ],
      returnType: { type: `Collection(${NS}.importedWindowsAutopilotDeviceIdentity)`, unicode: true },
    });
  });

  it.each([
    [
      'a nullability change',
      '<Property Name="importId" Type="Edm.String">',
      '<Property Name="importId" Type="Edm.String" Nullable="false">',
      `${NS}.importedWindowsAutopilotDeviceIdentity/importId: served {"kind":"Property","type":"Edm.String","nullable":false}, msgraph-metadata@f54f11b6:clean_v10_metadata/cleanMetadata.xml has {"kind":"Property","type":"Edm.String","nullable":true}`,
    ],
    [
      'a nullability change on the registered device',
      '<Property Name="enrollmentState" Type="microsoft.graph.enrollmentState" Nullable="false">',
      '<Property Name="enrollmentState" Type="microsoft.graph.enrollmentState">',
      `${NS}.windowsAutopilotDeviceIdentity/enrollmentState: served {"kind":"Property","type":"${NS}.enrollmentState","nullable":true}, ${REGISTERED} B1 has {"kind":"Property","type":"${NS}.enrollmentState","nullable":false}`,
    ],
    [
      'an action overload Graph does not describe',
      '<Parameter Name="deviceFriendlyName" Type="Edm.String" Unicode="false" />',
      '',
      `${NS}.updateDeviceProperties: served overload ${JSON.stringify([`${NS}.windowsAutopilotDeviceIdentity`, ...Array(6).fill('Edm.String')])}, ${REGISTERED} B8 describes ${JSON.stringify([`${NS}.windowsAutopilotDeviceIdentity`, ...Array(7).fill('Edm.String')])}`,
    ],
    [
      'a left-out navigation served after all',
      '<NavigationProperty Name="windowsAutopilotSettings" Type="microsoft.graph.windowsAutopilotSettings" ContainsTarget="true" />',
      '<NavigationProperty Name="windowsAutopilotSettings" Type="microsoft.graph.windowsAutopilotSettings" ContainsTarget="true" /><NavigationProperty Name="windowsAutopilotDeploymentProfiles" Type="Collection(microsoft.graph.windowsAutopilotDeviceIdentity)" ContainsTarget="true" />',
      `${NS}.deviceManagement/windowsAutopilotDeploymentProfiles: not a member of ${NS}.deviceManagement in any Graph section`,
    ],
    [
      'a type change',
      '<Property Name="deviceErrorCode" Type="Edm.Int32"',
      '<Property Name="deviceErrorCode" Type="Edm.Int64"',
      `${NS}.importedWindowsAutopilotDeviceIdentityState/deviceErrorCode: served {"kind":"Property","type":"Edm.Int64","nullable":false}, msgraph-metadata@f54f11b6:clean_v10_metadata/cleanMetadata.xml has {"kind":"Property","type":"Edm.Int32","nullable":false}`,
    ],
    [
      'a lost ContainsTarget',
      'Type="Collection(microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload)" ContainsTarget="true"',
      'Type="Collection(microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload)"',
      `${NS}.deviceManagement/importedWindowsAutopilotDeviceIdentityUploads: served {"kind":"NavigationProperty","type":"Collection(${NS}.importedWindowsAutopilotDeviceIdentityUpload)","containsTarget":false}, msgraph-metadata@84624d37:clean_beta_metadata/cleanMetadataWithDescriptionsbeta.xml has {"kind":"NavigationProperty","type":"Collection(${NS}.importedWindowsAutopilotDeviceIdentityUpload)","containsTarget":true}`,
    ],
    [
      'a changed enum value',
      '<Member Name="noUpload" Value="0">',
      '<Member Name="noUpload" Value="5">',
      `${NS}.importedWindowsAutopilotDeviceIdentityUploadStatus/noUpload: served {"kind":"Member","value":5}, msgraph-metadata@f54f11b6:clean_v10_metadata/cleanMetadata.xml has {"kind":"Member","value":0}`,
    ],
    [
      'an invented property',
      '<Property Name="importId" Type="Edm.String">',
      '<Property Name="deviceName" Type="Edm.String" /><Property Name="importId" Type="Edm.String">',
      `${NS}.importedWindowsAutopilotDeviceIdentity/deviceName: not a member of ${NS}.importedWindowsAutopilotDeviceIdentity in any Graph section`,
    ],
    [
      'a changed description',
      'String="Hardware Blob of the Windows autopilot device."',
      'String="Hardware blob."',
      `${NS}.importedWindowsAutopilotDeviceIdentity/hardwareIdentifier: description "Hardware blob." is none of Graph's ["Hardware Blob of the Windows autopilot device."]`,
    ],
    [
      'a dropped description',
      '<Annotation Term="Org.OData.Core.V1.Description" String="Read-only." />',
      '',
      `${NS}.entity/id: Graph's description is missing`,
    ],
    [
      'a non-abstract entity',
      '<EntityType Name="entity" Abstract="true">',
      '<EntityType Name="entity">',
      `${NS}.entity: served {"kind":"EntityType","abstract":false,"baseType":null,"key":["id"]}, msgraph-metadata@f54f11b6:clean_v10_metadata/cleanMetadata.xml has {"kind":"EntityType","abstract":true,"baseType":null,"key":["id"]}`,
    ],
    [
      'a changed function signature',
      '<ReturnType Type="Edm.String" Unicode="false" />',
      '<ReturnType Type="Edm.String" />',
      `${NS}.autopilotDeviceStream: served {"kind":"Function","isBound":true,"isComposable":true,"parameters":[{"name":"bindingParameter","type":"${NS}.importedWindowsAutopilotDeviceIdentityUpload","nullable":true}],"returnType":{"type":"Edm.String","nullable":true,"unicode":true}}, msgraph-metadata@84624d37:clean_beta_metadata/cleanMetadataWithDescriptionsbeta.xml has {"kind":"Function","isBound":true,"isComposable":true,"parameters":[{"name":"bindingParameter","type":"${NS}.importedWindowsAutopilotDeviceIdentityUpload","nullable":true}],"returnType":{"type":"Edm.String","nullable":true,"unicode":false}}`,
    ],
  ])('reports %s (negative control)', (_case, from, to, problem) => {
    const mutated = factsFromJson(xml2json(mutate(fileText, from, to), { strict: true }) as Json);

    expect(differencesFromGraph(mutated, sections)).toContain(problem);
  });
});

describe('src/odata/model.ts reads the same model', () => {
  const model = loadModel(fileText);
  const served = factsFromJson(model.json);
  const typeName = (t: { kind: string; name?: string; qualifiedName?: string }) => (t.kind === 'primitive' ? t.name! : t.qualifiedName!);

  it('for entity types: abstract, base type, key, structural and navigation properties', () => {
    for (const [name, entity] of model.entityTypes) {
      const own = served.types[name];
      expect({ name, abstract: entity.abstract, baseType: entity.baseType?.qualifiedName ?? null }).toEqual({ name, abstract: own.abstract, baseType: own.baseType });
      expect(entity.key).toEqual(['id']); // declared by entity, inherited by the rest
      for (const property of entity.properties.values()) {
        const declaredBy = [entity, ...ancestors(entity)].find((t) => served.members[`${t.qualifiedName}/${property.name}`])!;
        expect({ at: `${name}/${property.name}`, type: typeName(property.type), nullable: property.nullable }).toEqual({
          at: `${name}/${property.name}`,
          type: served.members[`${declaredBy.qualifiedName}/${property.name}`].type,
          nullable: served.members[`${declaredBy.qualifiedName}/${property.name}`].nullable,
        });
      }
      for (const nav of entity.navigations.values()) {
        const type = nav.collection ? `Collection(${nav.target.qualifiedName})` : nav.target.qualifiedName;
        expect({ type, containsTarget: nav.containsTarget, collection: nav.collection }).toEqual({
          type: served.members[`${name}/${nav.name}`].type,
          containsTarget: served.members[`${name}/${nav.name}`].containsTarget,
          collection: isCollection(served.members[`${name}/${nav.name}`].type!),
        });
      }
    }
    const declared = Object.entries(served.members).filter(([k, m]) => m.kind !== 'Member' && served.types[ownerOf(k)].kind === 'EntityType');
    const read = [...model.entityTypes.values()].flatMap((e) => [...e.properties.keys(), ...e.navigations.keys()].map((p) => `${e.qualifiedName}/${p}`));
    for (const [key] of declared) expect(read).toContain(key);
  });

  it('for the complex type and the enums', () => {
    for (const [name, complex] of model.complexTypes) {
      const members = [...complex.properties.values()].map((p) => [`${name}/${p.name}`, { kind: 'Property', type: typeName(p.type), nullable: p.nullable }]);
      expect(Object.fromEntries(members)).toEqual(Object.fromEntries(Object.entries(served.members).filter(([k]) => ownerOf(k) === name)));
    }
    for (const [name, enumType] of model.enumTypes) {
      const members = [...enumType.members].map(([member, value]) => [`${name}/${member}`, { kind: 'Member', value }]);
      expect(Object.fromEntries(members)).toEqual(Object.fromEntries(Object.entries(served.members).filter(([k]) => ownerOf(k) === name)));
    }
    expect([...model.complexTypes.keys(), ...model.enumTypes.keys()].sort()).toEqual(
      Object.keys(served.types).filter((t) => served.types[t].kind !== 'EntityType').sort(),
    );
  });
});

function ancestors<T extends { baseType?: T }>(type: T): T[] {
  return type.baseType ? [type.baseType, ...ancestors(type.baseType)] : [];
}
