import { useEffect, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { keys } from '../../../api/keys';
import { jobEventsUrl } from '../../../api/urls';
import type { Job, JobEvent } from '../../../api/types';
import { applyProgress } from '../../../lib/funnel';

export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'ended';

/**
 * Follows one job over its server-sent events and keeps its cached detail current:
 * `snapshot` replaces it, `progress` and `cancel_requested` merge counters, `job_finished`
 * refetches it (tokens, timings) and the lists. One stream for the open job, nothing per row.
 */
export function useJobEvents(jobId: string, enabled: boolean): StreamState {
  const qc = useQueryClient();
  const [state, setState] = useState<StreamState>('connecting');
  useEffect(() => {
    if (!enabled) {
      setState('ended');
      return;
    }
    const key = keys.jobs.detail(jobId);
    let lastSeq = -1;
    let resultsTimer: ReturnType<typeof setTimeout> | undefined;
    // Item grids, errors and drawers under the job follow the counters, at most once a second.
    const refreshResults = () => {
      if (resultsTimer) return;
      resultsTimer = setTimeout(() => {
        resultsTimer = undefined;
        void qc.invalidateQueries({ queryKey: key, predicate: (q) => q.queryKey.length > key.length });
      }, 1000);
    };
    const es = new EventSource(jobEventsUrl(jobId));
    setState('connecting');
    es.onopen = () => setState('live');
    es.onerror = () => setState(es.readyState === EventSource.CLOSED ? 'ended' : 'reconnecting');
    es.addEventListener('snapshot', (e) => {
      const job = JSON.parse((e as MessageEvent<string>).data) as Job;
      lastSeq = Number((e as MessageEvent).lastEventId || lastSeq);
      qc.setQueryData(key, job);
      refreshResults();
    });
    const merge = (e: Event) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as JobEvent;
      if (ev.seq <= lastSeq) return;
      lastSeq = ev.seq;
      qc.setQueryData<Job>(key, (job) => (job ? applyProgress(job, ev) : job));
      refreshResults();
    };
    es.addEventListener('progress', merge);
    es.addEventListener('cancel_requested', merge);
    es.addEventListener('job_finished', (e) => {
      merge(e);
      es.close();
      setState('ended');
      void qc.invalidateQueries({ queryKey: key });
      void qc.invalidateQueries({ queryKey: keys.jobs.lists() });
    });
    return () => {
      es.close();
      if (resultsTimer) clearTimeout(resultsTimer);
    };
  }, [jobId, enabled, qc]);
  return state;
}
