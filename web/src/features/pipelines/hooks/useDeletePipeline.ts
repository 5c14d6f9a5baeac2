import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';

export const deletePipelineMutation = (qc: QueryClient, onSuccess?: () => void) =>
  invalidating(
    qc,
    async (id: string) => {
      ok(await api.DELETE('/api/pipelines/{pipeline_id}', { params: { path: { pipeline_id: id } } }));
    },
    (_d, id) => [keys.pipelines.lists(), keys.pipelines.detail(id)],
    { onSuccess: () => onSuccess?.() },
  );

export function useDeletePipeline(onSuccess?: () => void) {
  return useMutation(deletePipelineMutation(useQueryClient(), onSuccess));
}
