import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';

export const renameLibraryMutation = (qc: QueryClient) =>
  invalidating(
    qc,
    async (v: { id: string; name: string; description?: string | null }) =>
      ok(await api.PATCH('/api/libraries/{library_id}', { params: { path: { library_id: v.id } }, body: { name: v.name, description: v.description } })),
    (_d, v) => [keys.libraries.lists(), keys.libraries.detail(v.id)],
  );

export function useRenameLibrary() {
  return useMutation(renameLibraryMutation(useQueryClient()));
}
