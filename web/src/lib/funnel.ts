import type { Job, JobEvent, StageProgress } from '../api/types';

export type Outcome = 'passed' | 'filtered_out' | 'failed';

export interface FunnelStage {
  index: number;
  name: string;
  /** Images that reached this stage (all of the job's for the first; the previous stage's passed after). */
  input: number;
  passed: number;
  filteredOut: number;
  failed: number;
  /** Reached the stage but not finished with it yet (pending, running, or cancelled or skipped there). */
  remaining: number;
  tokens: number;
}

/** The per-stage funnel of a job: images in → passed / filtered out / failed, stage by stage. */
export function computeFunnel(job: Pick<Job, 'counts' | 'stages'>): FunnelStage[] {
  const stages = [...job.stages].sort((a, b) => a.index - b.index);
  let input = job.counts.total;
  return stages.map((s) => {
    const stage: FunnelStage = {
      index: s.index,
      name: s.name,
      input,
      passed: s.passed,
      filteredOut: s.filtered_out,
      failed: s.failed,
      remaining: Math.max(0, input - s.passed - s.filtered_out - s.failed),
      tokens: s.input_tokens + s.output_tokens,
    };
    input = s.passed;
    return stage;
  });
}

/** Share of `part` in `whole` as a percentage for bar widths (0 when the whole is empty). */
export function share(part: number, whole: number): number {
  return whole > 0 ? Math.min(100, (part / whole) * 100) : 0;
}

/**
 * Applies a `progress` event to a job held in the cache: the counters come from the event as
 * the server computed them; the per-stage counts move by the items that finished a stage.
 * An item going on to the next stage (`running`) passed the stage it finished.
 */
export function applyProgress(job: Job, event: JobEvent): Job {
  const stages: StageProgress[] = job.stages.map((s) => ({ ...s }));
  if (event.type === 'progress') {
    for (const item of event.items) {
      const s = stages.find((st) => st.index === item.stage_index);
      if (!s) continue;
      switch (item.item_status) {
        case 'running':
        case 'passed':
          s.passed += 1;
          s.processed += 1;
          break;
        case 'filtered_out':
          s.filtered_out += 1;
          s.processed += 1;
          break;
        case 'failed':
          s.failed += 1;
          s.processed += 1;
          break;
        default:
          break;
      }
    }
  }
  const done =
    event.counts.passed + event.counts.filtered_out + event.counts.failed + event.counts.cancelled + event.counts.skipped;
  return {
    ...job,
    status: event.status,
    counts: event.counts,
    stop_reason: event.stop_reason ?? null,
    stages,
    percent_complete: event.counts.total > 0 ? (done / event.counts.total) * 100 : 0,
  };
}
