import { describe, expect, it } from 'vitest';
import { matchesName, parseRanges, setRange } from './selection';

describe('selection', () => {
  it('parses ranges and single positions into sorted unique indices', () => {
    expect(parseRanges('1-3, 5, 2, 9-20', 10)).toEqual({ indices: [0, 1, 2, 4, 8, 9] });
    expect(parseRanges('', 10)).toEqual({ indices: [] });
  });

  it('rejects bad parts with a message naming them', () => {
    expect(parseRanges('1-3, x', 10).error).toContain('"x"');
    expect(parseRanges('5-2', 10).error).toContain('"5-2"');
    expect(parseRanges('0', 10).error).toBeDefined();
    expect(parseRanges('11', 10).error).toContain('after the last image');
  });

  it('selects and clears a shift-click range in either direction', () => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const on = setRange(new Set(['a']), ids, 3, 1, true);
    expect([...on].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect([...setRange(on, ids, 0, 2, false)]).toEqual(['d']);
  });

  it('searches names by every word', () => {
    expect(matchesName('Cat_on_sofa.PNG', 'cat png')).toBe(true);
    expect(matchesName('dog.png', 'cat')).toBe(false);
    expect(matchesName('dog.png', '  ')).toBe(true);
  });
});
