import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';
import type { PreviewJob } from '../../../api/types';

/** Runs one stage on up to 3 images as a small high-priority preview job. */
export const previewStageMutation = (qc: QueryClient) =>
  invalidating(
    qc,
    async (body: PreviewJob) => ok(await api.POST('/api/jobs/preview', { body })),
    () => [keys.jobs.lists()],
  );

export function usePreviewStage() {
  return useMutation(previewStageMutation(useQueryClient()));
}
