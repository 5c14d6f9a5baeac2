import { keepPreviousData, useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { api, ok } from '../../../api/client';
import { keys, type PageParams } from '../../../api/keys';

export function useLibraries(p: PageParams) {
  return useQuery({
    queryKey: keys.libraries.list(p),
    queryFn: async ({ signal }) => ok(await api.GET('/api/libraries', { params: { query: p }, signal })),
    placeholderData: keepPreviousData,
  });
}

export function useLibrary(id: string) {
  return useQuery({
    queryKey: keys.libraries.detail(id),
    enabled: id !== '',
    queryFn: async ({ signal }) => ok(await api.GET('/api/libraries/{library_id}', { params: { path: { library_id: id } }, signal })),
  });
}

export const IMAGE_PAGE = 200;

/** A library's images, page by page as a grid scrolls (or all of them with `fetchAll`). */
export function useLibraryImages(id: string, enabled = true) {
  return useInfiniteQuery({
    queryKey: keys.libraries.images(id),
    enabled: enabled && id !== '',
    initialPageParam: 0,
    queryFn: async ({ pageParam, signal }) =>
      ok(await api.GET('/api/libraries/{library_id}/images', { params: { path: { library_id: id }, query: { limit: IMAGE_PAGE, offset: pageParam } }, signal })),
    getNextPageParam: (last) => (last.offset + last.items.length < last.total ? last.offset + last.items.length : undefined),
  });
}

export function useImage(libraryId: string, imageId: string) {
  return useQuery({
    queryKey: keys.libraries.image(libraryId, imageId),
    enabled: libraryId !== '' && imageId !== '',
    queryFn: async ({ signal }) =>
      ok(await api.GET('/api/libraries/{library_id}/images/{image_id}', { params: { path: { library_id: libraryId, image_id: imageId } }, signal })),
  });
}
