import { describe, expect, it } from 'vitest';
import type { JobEvent, JobSummary } from '../api/types';
import { applyToPage, replaceRow, SeqTracker } from './jobEvents';

const counts = { total: 4, pending: 4, running: 0, passed: 0, filtered_out: 0, failed: 0, cancelled: 0, skipped: 0 };
const job = (id: string) => ({ id, status: 'queued', counts, percent_complete: 0 }) as unknown as JobSummary;

describe('tenant events on the job list', () => {
  it('updates the row of the event job only', () => {
    const page = { items: [job('a'), job('b')], total: 2 };
    const ev = { type: 'progress', items: [], v: 3, job_id: 'b', seq: 2, status: 'running', counts: { ...counts, pending: 1, passed: 2, failed: 1 } } as unknown as JobEvent;
    const next = applyToPage(page, ev);
    expect(next.items[0]).toBe(page.items[0]);
    expect(next.items[1]).toMatchObject({ status: 'running', percent_complete: 75 });
    expect(page.items[1]!.status).toBe('queued');
  });

  it('counts skipped items as done and shows why the job stopped', () => {
    const page = { items: [job('a')], total: 1 };
    const ev = {
      type: 'progress', items: [], v: 3, job_id: 'a', seq: 3, status: 'completed', stop_reason: 'budget_exhausted',
      counts: { ...counts, pending: 0, passed: 1, skipped: 3 },
    } as unknown as JobEvent;
    expect(applyToPage(page, ev).items[0]).toMatchObject({ status: 'completed', percent_complete: 100, stop_reason: 'budget_exhausted' });
  });

  it('keeps the same page object when the job is not listed', () => {
    const page = { items: [job('a')] };
    expect(applyToPage(page, { job_id: 'z' } as JobEvent)).toBe(page);
  });

  it('replaces a row with a snapshot of the stored job', () => {
    const page = { items: [job('a'), job('b')] };
    const stored = { ...job('a'), status: 'completed' } as JobSummary;
    expect(replaceRow(page, stored).items).toEqual([stored, page.items[1]]);
    expect(replaceRow(page, job('z'))).toBe(page);
  });

  it('drops stale and repeated events per job and forgets the oldest jobs', () => {
    const t = new SeqTracker(2);
    expect(t.accept('a', 1)).toBe(true);
    expect(t.accept('a', 1)).toBe(false);
    expect(t.accept('a', 0)).toBe(false);
    expect(t.accept('b', 5)).toBe(true);
    expect(t.accept('a', 2)).toBe(true);
    expect(t.accept('c', 1)).toBe(true); // evicts b, the least recently updated
    expect(t.accept('b', 1)).toBe(true);
  });
});
