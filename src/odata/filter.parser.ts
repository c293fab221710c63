import { defaultParser } from '@odata/parser';
import { parserFactory } from '@odata/parser/lib/parser';
import { orderbyItem } from '@odata/parser/lib/query';
import { badRequest } from './errors';
import { AstNode, OrderByItem, orderByItem } from './filter.ast';
import { rejected, syntaxError } from './filter.diagnostics';
import { ARITHMETIC_OPERATORS, BINARY_OPERATORS, DIRECTIONS } from './filter.grammar';
import { splitTopLevel } from './lexical';
import { escapePercent, precheck, refuseUnclosedJsonString, rewriteIn } from './odata-parser.workarounds';

/*
 * $filter and $orderby text → @odata/parser's expression tree. The text is the client's, decoded once from the raw
 * query string; it passes the workarounds of odata-parser.workarounds.ts on the way in, and a rejected expression
 * is a 400 that names the problem and its position in the client's text.
 */

/** Parses a $filter expression; a malformed one is a 400 that names the problem and its position. */
export function parseFilter(source: string): AstNode {
  if (!source.trim()) throw badRequest('The $filter expression is empty.', '$filter');
  precheck('$filter', source);
  const parsed = escapePercent(rewriteIn(source));
  try {
    refuseUnclosedJsonString(parsed.text);
    return defaultParser.filter(parsed.text);
  } catch (err) {
    throw rejected('$filter', source, err, BINARY_OPERATORS, parsed.map);
  }
}

const parseOrderByItem = parserFactory(orderbyItem);

/** Parses $orderby item by item, so an error's position is in the client's text. */
export function parseOrderBy(source: string): OrderByItem[] {
  const split = splitTopLevel(source, ',');
  if (split.stoppedAt === 'openString') {
    throw syntaxError('$orderby', { position: split.end, problem: 'the string literal that starts here is not closed' }, source);
  }
  return split.parts.map(({ text, offset }) => {
    const lead = text.length - text.trimStart().length;
    const item = text.trim();
    if (!item) throw syntaxError('$orderby', { position: offset, problem: 'an expression to order by was expected' }, source, 0);
    precheck('$orderby', item, offset + lead);
    const escaped = escapePercent({ text: item, map: [...item].map((_, i) => i).concat(item.length) });
    let parsed: unknown;
    try {
      refuseUnclosedJsonString(escaped.text);
      parsed = parseOrderByItem(escaped.text, {});
    } catch (err) {
      throw rejected('$orderby', item, err, ARITHMETIC_OPERATORS, escaped.map, DIRECTIONS, offset + lead);
    }
    return orderByItem(parsed);
  });
}
