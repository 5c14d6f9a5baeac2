import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';
import type { Library } from '../../../api/types';

export const createLibraryMutation = (qc: QueryClient, onSuccess?: (l: Library) => void) =>
  invalidating(
    qc,
    async (body: { name: string; description?: string | null }) => ok(await api.POST('/api/libraries', { body })),
    () => [keys.libraries.all()],
    { onSuccess: (l) => onSuccess?.(l) },
  );

export function useCreateLibrary(onSuccess?: (l: Library) => void) {
  const qc = useQueryClient();
  return useMutation(createLibraryMutation(qc, onSuccess));
}
