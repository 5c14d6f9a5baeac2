import { describe, expect, it } from 'vitest';
import { readParams, writeParams } from './urlState';

const defaults = { status: '', q: '', page: 1, sort: 'created_desc', image: '' };

describe('url state', () => {
  it('reads values with defaults and rejects bad numbers', () => {
    expect(readParams(new URLSearchParams('status=running&page=3'), defaults)).toEqual({ ...defaults, status: 'running', page: 3 });
    expect(readParams(new URLSearchParams('page=-2'), defaults).page).toBe(1);
    expect(readParams(new URLSearchParams('page=abc'), defaults).page).toBe(1);
  });

  it('leaves defaults out of the URL', () => {
    const s = writeParams(new URLSearchParams('page=2'), { page: 1, status: 'failed' }, defaults);
    expect(s.toString()).toBe('status=failed');
  });

  it('goes back to the first page when a filter changes, not when the drawer opens', () => {
    const base = new URLSearchParams('page=4&status=running');
    expect(writeParams(base, { status: 'failed' }, defaults).toString()).toBe('status=failed');
    expect(writeParams(base, { image: 'abc' }, defaults).toString()).toBe('image=abc&page=4&status=running');
    expect(writeParams(base, { page: 5 }, defaults).get('page')).toBe('5');
  });

  it('keeps query parameters it does not know', () => {
    expect(writeParams(new URLSearchParams('other=1'), { q: 'x' }, defaults).toString()).toBe('other=1&q=x');
  });
});
