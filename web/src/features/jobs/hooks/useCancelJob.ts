import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';

export const cancelJobMutation = (qc: QueryClient) =>
  invalidating(
    qc,
    async (id: string) => ok(await api.POST('/api/jobs/{job_id}/cancel', { params: { path: { job_id: id } } })),
    (_d, id) => [keys.jobs.detail(id), keys.jobs.lists()],
  );

export function useCancelJob() {
  return useMutation(cancelJobMutation(useQueryClient()));
}
