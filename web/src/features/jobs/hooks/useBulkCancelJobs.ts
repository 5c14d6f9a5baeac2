import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';

/** Cancels up to 100 jobs; the answer has an outcome per job. */
export const bulkCancelJobsMutation = (qc: QueryClient) =>
  invalidating(
    qc,
    async (jobIds: string[]) => ok(await api.POST('/api/jobs/bulk/cancel', { body: { job_ids: jobIds } })),
    (_d, ids) => [keys.jobs.lists(), ...ids.map((id) => keys.jobs.detail(id))],
  );

export function useBulkCancelJobs() {
  return useMutation(bulkCancelJobsMutation(useQueryClient()));
}
