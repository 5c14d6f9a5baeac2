import { describe, expect, it } from 'vitest';
import { ariaSort, DEFAULT_SORT, nextSort, parseSort, stageSummary } from './jobList';
import { readParams, writeParams } from './urlState';

const defaults = { status: '', sort: '', page: 1 };

describe('job list sort in the URL', () => {
  it('reads a known sort and falls back to newest first otherwise', () => {
    expect(parseSort(readParams(new URLSearchParams('sort=-finished_at'), defaults).sort)).toBe('-finished_at');
    expect(parseSort(readParams(new URLSearchParams('sort=status'), defaults).sort)).toBe('status');
    expect(parseSort(readParams(new URLSearchParams(''), defaults).sort)).toBe(DEFAULT_SORT);
    expect(parseSort('pipeline_name')).toBe(DEFAULT_SORT);
  });

  it('toggles a column descending first, then ascending', () => {
    expect(nextSort(DEFAULT_SORT, 'created_at')).toBe('created_at');
    expect(nextSort('created_at', 'created_at')).toBe('-created_at');
    expect(nextSort(DEFAULT_SORT, 'finished_at')).toBe('-finished_at');
    expect(nextSort('-finished_at', 'finished_at')).toBe('finished_at');
    expect(nextSort('created_at', 'status')).toBe('status');
  });

  it('writes the sort to the query string and goes back to the first page', () => {
    const s = writeParams(new URLSearchParams('page=3&status=running'), { sort: nextSort(DEFAULT_SORT, 'finished_at') }, defaults);
    expect(s.toString()).toBe('sort=-finished_at&status=running');
  });

  it('marks the sorted header for assistive technology', () => {
    expect(ariaSort('-created_at', 'created_at')).toBe('descending');
    expect(ariaSort('finished_at', 'finished_at')).toBe('ascending');
    expect(ariaSort('status', 'created_at')).toBe('none');
  });
});

describe('stage summary', () => {
  it('shows each stage as processed→passed, with failures only when there are some', () => {
    const stage = { filtered_out: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 };
    expect(
      stageSummary([
        { ...stage, index: 0, name: 'detect', processed: 12, passed: 2, filtered_out: 9, failed: 1 },
        { ...stage, index: 1, name: 'describe', processed: 2, passed: 2, failed: 0 },
      ]),
    ).toBe('detect 12→2 (1 failed) · describe 2→2');
    expect(stageSummary([])).toBe('');
  });
});
