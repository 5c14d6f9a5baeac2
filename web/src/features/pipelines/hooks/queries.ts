import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys, type PageParams } from '../../../api/keys';

export function usePipelines(p: PageParams) {
  return useQuery({
    queryKey: keys.pipelines.list(p),
    queryFn: async ({ signal }) => ok(await api.GET('/api/pipelines', { params: { query: p }, signal })),
    placeholderData: keepPreviousData,
  });
}

export function usePipeline(id: string, enabled = true) {
  return useQuery({
    queryKey: keys.pipelines.detail(id),
    enabled: enabled && id !== '',
    queryFn: async ({ signal }) => ok(await api.GET('/api/pipelines/{pipeline_id}', { params: { path: { pipeline_id: id } }, signal })),
  });
}
