import type { JobEvent, JobSummary } from '../api/types';

/** Share of a job's items in a terminal state, as the api computes `percent_complete`. */
export function percentDone(c: JobSummary['counts']): number {
  const done = c.passed + c.filtered_out + c.failed + c.cancelled + c.skipped;
  return c.total > 0 ? (done / c.total) * 100 : 0;
}

/**
 * A page of the job history with one event applied: the job's row takes the event's status and
 * counters. Returns the same page when the job is not on it, so React Query keeps its data.
 */
export function applyToPage<P extends { items: JobSummary[] }>(page: P, ev: JobEvent): P {
  const i = page.items.findIndex((j) => j.id === ev.job_id);
  if (i < 0) return page;
  const items = [...page.items];
  const job = items[i]!;
  items[i] = { ...job, status: ev.status, counts: ev.counts, percent_complete: percentDone(ev.counts), stop_reason: ev.stop_reason ?? null };
  return { ...page, items };
}

/** A page with one job's row replaced by its stored state (same page when it is not listed). */
export function replaceRow<P extends { items: JobSummary[] }>(page: P, job: JobSummary): P {
  const i = page.items.findIndex((j) => j.id === job.id);
  if (i < 0) return page;
  const items = [...page.items];
  items[i] = job;
  return { ...page, items };
}

/** Remembers the newest `seq` per job so late or repeated events are dropped. */
export class SeqTracker {
  private readonly seen = new Map<string, number>();
  constructor(private readonly max = 10_000) {}

  /** True when `seq` is newer than anything seen for the job (and records it). */
  accept(jobId: string, seq: number): boolean {
    const last = this.seen.get(jobId);
    if (last !== undefined && seq <= last) return false;
    this.seen.delete(jobId);
    this.seen.set(jobId, seq);
    if (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value!);
    return true;
  }
}
