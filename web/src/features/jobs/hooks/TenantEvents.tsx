import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import { useQueryClient, type QueryClient } from '@tanstack/react-query';
import { keys } from '../../../api/keys';
import { TENANT_EVENTS_URL } from '../../../api/urls';
import type { JobEvent, JobSnapshot, JobSummary } from '../../../api/types';
import { applyToPage, replaceRow, SeqTracker } from '../../../lib/jobEvents';

export type TenantStreamState = 'connecting' | 'live' | 'reconnecting' | 'unavailable';
const Ctx = createContext<TenantStreamState>('unavailable');

/** Whether the tab's tenant-wide stream is feeding the lists (else they poll). */
export function useTenantStream(): TenantStreamState {
  return useContext(Ctx);
}

/** Throttled invalidation of every job list: new jobs and reloads, at most once a second. */
function listRefresher(qc: QueryClient) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void qc.invalidateQueries({ queryKey: keys.jobs.lists() });
    }, 1000);
  };
  return { run, stop: () => timer && clearTimeout(timer) };
}

/**
 * One EventSource per tab for every job of the tenant: progress merges into the cached list
 * pages, new and finished jobs refresh the lists. Rows never open streams of their own.
 */
export function TenantEventsProvider({ enabled, children }: { enabled: boolean; children: ReactNode }) {
  const qc = useQueryClient();
  const [state, setState] = useState<TenantStreamState>('connecting');
  useEffect(() => {
    if (!enabled) return;
    const seqs = new SeqTracker();
    const refresh = listRefresher(qc);
    const es = new EventSource(TENANT_EVENTS_URL);
    setState('connecting');
    es.onopen = () => setState('live');
    // A closed stream (an api without it, or a refused one) leaves the lists to poll.
    es.onerror = () => setState(es.readyState === EventSource.CLOSED ? 'unavailable' : 'reconnecting');
    const merge = (e: Event) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as JobEvent;
      if (!seqs.accept(ev.job_id, ev.seq)) return;
      qc.setQueriesData<{ items: JobSummary[] }>({ queryKey: keys.jobs.lists() }, (page) => (page ? applyToPage(page, ev) : page));
    };
    es.addEventListener('progress', merge);
    es.addEventListener('cancel_requested', merge);
    es.addEventListener('job_finished', (e) => {
      merge(e);
      refresh.run();
    });
    es.addEventListener('job_created', refresh.run);
    // A job the stream missed events of, as stored now: its row takes the stored state.
    es.addEventListener('snapshot', (e) => {
      const snap = JSON.parse((e as MessageEvent<string>).data) as JobSnapshot;
      if (!seqs.accept(snap.job.id, snap.seq)) return;
      qc.setQueriesData<{ items: JobSummary[] }>({ queryKey: keys.jobs.lists() }, (page) => (page ? replaceRow(page, snap.job) : page));
    });
    es.addEventListener('resync', refresh.run);
    return () => {
      es.close();
      refresh.stop();
    };
  }, [enabled, qc]);
  return <Ctx.Provider value={enabled ? state : 'unavailable'}>{children}</Ctx.Provider>;
}
