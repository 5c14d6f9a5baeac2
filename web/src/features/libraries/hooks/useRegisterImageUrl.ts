import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys } from '../../../api/keys';
import { invalidating } from '../../../api/mutation';

export const registerImageUrlMutation = (qc: QueryClient, libraryId: string) =>
  invalidating(
    qc,
    async (body: { url: string; filename?: string | null }) =>
      ok(await api.POST('/api/libraries/{library_id}/image-urls', { params: { path: { library_id: libraryId } }, body })),
    () => [keys.libraries.detail(libraryId), keys.libraries.lists()],
  );

export function useRegisterImageUrl(libraryId: string) {
  return useMutation(registerImageUrlMutation(useQueryClient(), libraryId));
}
