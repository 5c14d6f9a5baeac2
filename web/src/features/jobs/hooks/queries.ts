import { keepPreviousData, useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys, type HistoryParams } from '../../../api/keys';
import type { ItemStatus, JobHistorySort, JobStatus, Verdict } from '../../../api/types';

/** `poll`: no live stream feeds the list, so it re-reads itself while jobs on it are moving. */
export function useJobHistory(p: HistoryParams, poll: boolean) {
  return useQuery({
    queryKey: keys.jobs.list(p),
    queryFn: async ({ signal }) =>
      ok(await api.GET('/api/jobs/history', { params: { query: { ...p, status: p.status as JobStatus | undefined, sort: p.sort as JobHistorySort | undefined } }, signal })),
    placeholderData: keepPreviousData,
    // One request for the whole page, never one per row.
    refetchInterval: (query) => (poll && query.state.data?.items.some((j) => j.status === 'queued' || j.status === 'running') ? 5000 : false),
  });
}

export function useJob(id: string) {
  return useQuery({
    queryKey: keys.jobs.detail(id),
    queryFn: async ({ signal }) => ok(await api.GET('/api/jobs/{job_id}', { params: { path: { job_id: id } }, signal })),
  });
}

/**
 * The job's ETA and when it was read, apart from its detail (which the event stream keeps): read
 * while the job runs, again whenever the stream refreshes what hangs under the job (at most once a
 * second), and counted down in between.
 */
export function useJobEta(id: string, live: boolean) {
  return useQuery({
    queryKey: keys.jobs.eta(id),
    enabled: live,
    queryFn: async ({ signal }) => {
      const job = ok(await api.GET('/api/jobs/{job_id}', { params: { path: { job_id: id } }, signal }));
      return { eta_seconds: job.eta_seconds ?? null, read_at: Date.now() };
    },
  });
}

export const RESULT_PAGE = 200;

/** A job's results of one stage (optionally one verdict), page by page as the grid scrolls. */
export function useJobResults(id: string, f: { stage?: number; verdict?: Verdict; image_id?: string }, enabled = true) {
  return useInfiniteQuery({
    queryKey: keys.jobs.results(id, f),
    enabled,
    initialPageParam: 0,
    queryFn: async ({ pageParam, signal }) =>
      ok(await api.GET('/api/jobs/{job_id}/results', { params: { path: { job_id: id }, query: { ...f, limit: RESULT_PAGE, offset: pageParam } }, signal })),
    getNextPageParam: (last) => (last.offset + last.items.length < last.total ? last.offset + last.items.length : undefined),
  });
}

export const ITEM_PAGE = 200;

/** A job's items, optionally one funnel segment (stage + outcome), page by page as the grid scrolls. */
export function useJobItems(id: string, f: { stage?: number; outcome?: ItemStatus }) {
  return useInfiniteQuery({
    queryKey: keys.jobs.items(id, f),
    initialPageParam: 0,
    queryFn: async ({ pageParam, signal }) =>
      ok(await api.GET('/api/jobs/{job_id}/items', { params: { path: { job_id: id }, query: { ...f, limit: ITEM_PAGE, offset: pageParam } }, signal })),
    getNextPageParam: (last) => (last.offset + last.items.length < last.total ? last.offset + last.items.length : undefined),
  });
}

/** One item with every stage: prompt, answer, verdict, attempts, latency, tokens. */
export function useJobItem(id: string, itemId: string) {
  return useQuery({
    queryKey: keys.jobs.item(id, itemId),
    enabled: itemId !== '',
    queryFn: async ({ signal }) => ok(await api.GET('/api/jobs/{job_id}/items/{item_id}', { params: { path: { job_id: id, item_id: itemId } }, signal })),
  });
}

/** The job's failures grouped by error class; re-read when the failed count changes. */
export function useJobErrors(id: string, failed: number) {
  return useQuery({
    queryKey: [...keys.jobs.errors(id), failed],
    enabled: failed > 0,
    queryFn: async ({ signal }) => ok(await api.GET('/api/jobs/{job_id}/errors', { params: { path: { job_id: id } }, signal })),
    placeholderData: keepPreviousData,
  });
}
