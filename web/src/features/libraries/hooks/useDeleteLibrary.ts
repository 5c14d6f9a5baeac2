import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';

export const deleteLibraryMutation = (qc: QueryClient, onSuccess?: () => void) =>
  invalidating(
    qc,
    async (id: string) => {
      ok(await api.DELETE('/api/libraries/{library_id}', { params: { path: { library_id: id } } }));
    },
    () => [keys.libraries.all()],
    { onSuccess: () => onSuccess?.() },
  );

export function useDeleteLibrary(onSuccess?: () => void) {
  return useMutation(deleteLibraryMutation(useQueryClient(), onSuccess));
}
