import { describe, expect, it } from 'vitest';
import type { Job, JobEvent } from '../api/types';
import { applyProgress, computeFunnel, share } from './funnel';

const stage = (index: number, name: string, passed: number, filtered_out: number, failed: number) => ({
  index, name, passed, filtered_out, failed, processed: passed + filtered_out + failed, input_tokens: 10, output_tokens: 5, cost_usd: 0,
});
const counts = { total: 10, pending: 0, running: 0, passed: 0, filtered_out: 0, failed: 0, cancelled: 0, skipped: 0 };

describe('funnel', () => {
  it('feeds each stage with the previous stage passed', () => {
    const f = computeFunnel({ counts: { ...counts, total: 10 }, stages: [stage(1, 'describe', 3, 0, 1), stage(0, 'detect', 6, 3, 1)] });
    expect(f.map((s) => [s.name, s.input, s.passed, s.filteredOut, s.failed, s.remaining])).toEqual([
      ['detect', 10, 6, 3, 1, 0],
      ['describe', 6, 3, 0, 1, 2],
    ]);
  });

  it('computes shares without dividing by zero', () => {
    expect(share(1, 4)).toBe(25);
    expect(share(3, 0)).toBe(0);
  });

  it('applies a progress event to the stage counts and job counters', () => {
    const job = { status: 'running', counts: { ...counts, total: 3, pending: 3 }, stages: [stage(0, 'a', 0, 0, 0), stage(1, 'b', 0, 0, 0)], percent_complete: 0 } as unknown as Job;
    const ev = {
      type: 'progress', v: 1, job_id: 'j', seq: 4, status: 'running',
      counts: { ...counts, total: 3, pending: 0, running: 1, filtered_out: 1, failed: 1 },
      items: [
        { item_id: 'i1', stage_index: 0, item_status: 'running' },
        { item_id: 'i2', stage_index: 0, item_status: 'filtered_out' },
        { item_id: 'i3', stage_index: 0, item_status: 'failed' },
      ],
    } as JobEvent;
    const next = applyProgress(job, ev);
    expect(next.stages[0]).toMatchObject({ passed: 1, filtered_out: 1, failed: 1, processed: 3 });
    expect(next.stages[1]).toMatchObject({ passed: 0, processed: 0 });
    expect(next.percent_complete).toBeCloseTo(66.67, 1);
    expect(job.stages[0]!.passed).toBe(0);
  });
});
