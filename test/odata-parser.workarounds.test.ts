import { Worker } from 'node:worker_threads';
import { defaultParser } from '@odata/parser';
import { AstNode } from '../src/odata/filter.ast';
import { BoolTree, escapePercent, precheck, reassociate, rewriteIn, unclosedJsonString, unescapePercent } from '../src/odata/odata-parser.workarounds';

/** The workarounds for @odata/parser defects (src/odata/odata-parser.workarounds.ts), one table each. */

const identity = (text: string) => [...Array(text.length + 1).keys()];

/** The error message `fn` throws, or undefined. */
function messageOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

describe('rewriteIn: the parser has no `in` operator', () => {
  it.each([
    ["groupTag in ('a', 'b')", "(groupTag eq 'a' or groupTag eq 'b')"],
    ["state/deviceImportStatus in ('pending')", "(state/deviceImportStatus eq 'pending')"],
    ["groupTag in ('x in (y)', 'it''s') and id in (1,2)", "(groupTag eq 'x in (y)' or groupTag eq 'it''s') and (id eq 1 or id eq 2)"],
    ["groupTag in (('a'), 'b')", "(groupTag eq ('a') or groupTag eq 'b')"],
    ["groupTag eq 'in (a)'", "groupTag eq 'in (a)'"],
    ['contains(groupTag, 1)', 'contains(groupTag, 1)'],
  ])('%j → %j', (source, text) => {
    expect(rewriteIn(source).text).toBe(text);
  });

  it('maps every character of the rewritten text to where it came from', () => {
    // arrange: "x in (1,2)" → "(x eq 1 or x eq 2) and y": the replacement maps to the path, the rest to itself
    const source = 'x in (1,2) and y';

    // act
    const { text, map } = rewriteIn(source);

    // assert
    expect(text).toBe('(x eq 1 or x eq 2) and y');
    expect(map).toHaveLength(text.length + 1);
    expect(map.slice(0, 18)).toEqual(Array(18).fill(0));
    expect(map.slice(18)).toEqual([10, 11, 12, 13, 14, 15, 16]);
  });

  it.each([
    ['groupTag in ()', "at position 12 ('()'): the list of the 'in' operator is empty"],
    ["groupTag in ('a',,'b')", "at position 17 (','b')'): an item of the 'in' list is missing"],
    ["groupTag in ('a',)", "at position 17 (')'): an item of the 'in' list is missing"],
    ["groupTag in ('a', 'b'", "at position 12 ('('a', 'b''): the list of the 'in' operator is not closed"],
    ["groupTag in ('a', 'b)", "at position 18 (''b)'): the string literal that starts here is not closed"],
  ])('%j is a 400: %s', (source, message) => {
    expect(messageOf(() => rewriteIn(source))).toBe(`Syntax error in $filter ${message}.`);
  });

  it('refuses an `in` whose left side is not a property path (501)', () => {
    expect(messageOf(() => rewriteIn("tolower(groupTag) in ('a')"))).toBe("The 'in' operator is supported with a property path on its left.");
  });

  it('counts the items of all lists against MAX_IN_ITEMS', () => {
    const list = (n: number) => `(${Array.from({ length: n }, (_, i) => i).join(',')})`;

    expect(messageOf(() => rewriteIn(`a in ${list(200)} or b in ${list(50)}`))).toBeUndefined();
    expect(messageOf(() => rewriteIn(`a in ${list(200)} or b in ${list(51)}`))).toMatch(/more than 250 items together/);
  });
});

describe("escapePercent / unescapePercent: the parser decodes %XX itself", () => {
  it.each([
    ["x eq 'a'", "x eq 'a'"],
    ["x eq '100%'", "x eq '100%25'"],
    ["x eq '%27 or 1 eq 1'", "x eq '%2527 or 1 eq 1'"],
  ])('%j goes to the parser as %j and comes back', (text, escaped) => {
    const result = escapePercent({ text, map: identity(text) });

    expect(result.text).toBe(escaped);
    expect(result.map).toHaveLength(escaped.length + 1);
    expect(unescapePercent(escaped)).toBe(text);
  });

  it('maps the three characters of %25 to the one it replaces', () => {
    expect(escapePercent({ text: "'%'", map: identity("'%'") }).map).toEqual([0, 1, 1, 1, 2, 3]);
  });
});

describe('precheck: refused before the parser sees it', () => {
  it.each([
    ["x eq 'a%b'", undefined],
    ['x eq 1%2', "Syntax error in $filter at position 6 ('%2'): '%' is not allowed here (percent-encode the query option exactly once)."],
    [`${'('.repeat(51)}x${')'.repeat(51)}`, 'parentheses nest more than 50 deep'],
    [`${'not '.repeat(101)}x`, "more than 100 'not' operators"],
    [`${'not '.repeat(100)}x`, undefined],
    ["x eq 'not not' and notes eq 1", undefined],
    ["x eq 'unclosed %", undefined],
  ])('%j → %j', (source, message) => {
    const thrown = messageOf(() => precheck('$filter', source));

    if (message === undefined) expect(thrown).toBeUndefined();
    else expect(thrown).toContain(message);
  });
});

describe('reassociate: the parser reads `not A and B` as `not (A and B)`', () => {
  /** The tree as text: and/or/not in prefix form, leaves by their text. */
  function show(tree: BoolTree): string {
    if (tree.op === 'leaf') return tree.node.raw;
    if (tree.op === 'not') return `not(${show(tree.operand)})`;
    return `${tree.op}(${tree.operands.map(show).join(', ')})`;
  }

  it.each([
    ['not a eq 1 and b eq 2', 'and(not(a eq 1), b eq 2)'],
    ['not a eq 1 or b eq 2', 'or(not(a eq 1), b eq 2)'],
    ['a eq 1 or b eq 2 and c eq 3', 'or(a eq 1, and(b eq 2, c eq 3))'],
    ['a eq 1 and b eq 2 or not not c eq 3', 'or(and(a eq 1, b eq 2), not(not(c eq 3)))'],
    ['not (a eq 1 and b eq 2)', 'not((a eq 1 and b eq 2))'],
    ['a eq 1 or b eq 2 or c eq 3', 'or(a eq 1, b eq 2, c eq 3)'],
  ])('%j → %s', (source, tree) => {
    const node = defaultParser.filter(source) as unknown as AstNode;

    expect(show(reassociate(node))).toBe(tree);
  });
});

describe('unclosedJsonString: the parser loops forever on a JSON string left open', () => {
  it.each([
    ['["a', 1],
    ['groupTag eq {"a":"', 17],
    ['[1,"a\\"', 3],
    ['["a", "b', 6],
    ["x eq 'it''s \"' and y eq [\"", 25],
    ['["a"]', undefined],
    ['{"a":"b\\"c"}', undefined],
    ["x eq '[\"a'", undefined],
    ["x eq '[\"a", undefined],
    ['groupTag eq null', undefined],
  ])('%j → %j', (text, position) => {
    expect(unclosedJsonString(text)).toBe(position);
  });

  /** What parseFilter / parseOrderBy answer for each input, from a worker thread, or 'no answer' after `ms`. */
  function answersFromWorker(calls: [string, string][], ms: number): Promise<string[]> {
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       require('ts-node').register({ transpileOnly: true });
       const parser = require(workerData.module);
       for (const [fn, input] of workerData.calls) {
         try { parser[fn](input); parentPort.postMessage('parsed'); } catch (err) { parentPort.postMessage(err.status + ' ' + err.message); }
       }`,
      { eval: true, workerData: { module: require.resolve('../src/odata/filter.parser'), calls } },
    );
    const answers: string[] = [];
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        void worker.terminate();
        resolve(calls.map((_, i) => answers[i] ?? 'no answer'));
      };
      const timer = setTimeout(finish, ms);
      worker.on('message', (answer: string) => {
        answers.push(answer);
        if (answers.length === calls.length) finish();
      });
      worker.on('error', finish);
    });
  }

  it('keeps parseFilter and parseOrderBy from hanging: they answer 400 at once', async () => {
    // arrange: each input made @odata/parser loop forever before the guard (a worker, so a regression fails, not hangs)
    const calls: [string, string][] = [
      ['parseFilter', '["a'],
      ['parseFilter', 'groupTag eq {"a":"'],
      ['parseOrderBy', 'groupTag, {"a":"b'],
    ];

    // act
    const answers = await answersFromWorker(calls, 20000);

    // assert
    expect(answers).toEqual([
      "400 Syntax error in $filter at position 0 ('[\"a'): the character '[' is not allowed here.",
      "400 Syntax error in $filter at position 12 ('{\"a\":\"'): the character '{' is not allowed here.",
      "400 Syntax error in $orderby at position 10 ('{\"a\":\"b'): the character '{' is not allowed here.",
    ]);
  });
});
