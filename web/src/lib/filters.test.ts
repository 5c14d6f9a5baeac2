import { describe, expect, it } from 'vitest';
import type { Filter } from '../api/types';
import { checkFilter, formatValue, fromApi, newNode, parseValue, replaceNode, toApi } from './filters';

describe('filter builder model', () => {
  it('round-trips every API filter kind', () => {
    const f: Filter = {
      type: 'all',
      filters: [
        { type: 'field', pointer: '/label', op: 'in', value: ['cat', 'lion'] },
        { type: 'not', filter: { type: 'regex', pattern: '(?i)\\bcartoon\\b' } },
        { type: 'any', filters: [{ type: 'field', pointer: '/animal', op: 'eq', value: true }, { type: 'field', pointer: '/n', op: 'gte', value: 3 }] },
      ],
    };
    expect(toApi(fromApi(f))).toEqual(f);
  });

  it('keeps strings that look like other JSON values as strings', () => {
    for (const v of ['true', '3', 'null', 'cat', 'a,b', '', '["x"]']) {
      expect(parseValue(formatValue(v), 'eq')).toBe(v);
    }
  });

  it('reads typed values as JSON and lists for `in`', () => {
    expect(parseValue('true', 'eq')).toBe(true);
    expect(parseValue('2.5', 'gt')).toBe(2.5);
    expect(parseValue('cat', 'eq')).toBe('cat');
    expect(parseValue('cat, lion', 'in')).toEqual(['cat', 'lion']);
    expect(parseValue('[1, 2]', 'in')).toEqual([1, 2]);
  });

  it('reports client-side errors under the same keys as the API pointers', () => {
    const root = fromApi({ type: 'any', filters: [{ type: 'regex', pattern: '' }, { type: 'not', filter: { type: 'field', pointer: 'label', op: 'eq', value: 1 } }] });
    expect(checkFilter(root, 'stages.1.filter')).toEqual({
      'stages.1.filter.filters.0.pattern': 'must not be empty',
      'stages.1.filter.filters.1.filter.pointer': 'a JSON pointer starts with "/" (or is empty for the whole answer)',
    });
  });

  it('removes and replaces nested nodes by id', () => {
    const root = newNode('all');
    if (root.kind !== 'all') throw new Error('unexpected');
    const first = root.children[0]!;
    const regex = newNode('regex');
    const replaced = replaceNode(root, first.id, regex);
    expect(replaced && toApi(replaced)).toEqual({ type: 'all', filters: [{ type: 'regex', pattern: '' }] });
    const removed = replaceNode(replaced!, regex.id, null);
    expect(removed && toApi(removed)).toEqual({ type: 'all', filters: [] });
  });
});
