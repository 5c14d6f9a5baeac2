import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';
import type { SubmitJob } from '../../../api/types';

/** Submits with an Idempotency-Key: repeating the same key returns the job of the first call. */
export const submitJobMutation = (qc: QueryClient) =>
  invalidating(
    qc,
    async (v: { body: SubmitJob; idempotencyKey: string }) =>
      ok(await api.POST('/api/jobs/submit', { body: v.body, params: { header: { 'Idempotency-Key': v.idempotencyKey } } })),
    // A new job is work ahead of the next one: estimates change.
    () => [keys.jobs.lists(), keys.jobs.estimates()],
  );

export function useSubmitJob() {
  return useMutation(submitJobMutation(useQueryClient()));
}
