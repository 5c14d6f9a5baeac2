import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';
import type { Pipeline, PipelineDefinition } from '../../../api/types';

/** Creates a pipeline (no id) or saves a new version of one. */
export const savePipelineMutation = (qc: QueryClient, onSuccess?: (p: Pipeline) => void) =>
  invalidating(
    qc,
    async (v: { id?: string; body: PipelineDefinition }) =>
      v.id
        ? ok(await api.PUT('/api/pipelines/{pipeline_id}', { params: { path: { pipeline_id: v.id } }, body: v.body }))
        : ok(await api.POST('/api/pipelines', { body: v.body })),
    (p) => [keys.pipelines.lists(), keys.pipelines.detail(p.id)],
    { onSuccess: (p) => onSuccess?.(p) },
  );

export function useSavePipeline(onSuccess?: (p: Pipeline) => void) {
  return useMutation(savePipelineMutation(useQueryClient(), onSuccess));
}
