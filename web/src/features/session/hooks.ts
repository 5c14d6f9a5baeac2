import { useEffect } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ok, onUnauthorized } from '../../api/client';
import { ApiError } from '../../api/errors';
import { keys } from '../../api/keys';
import type { Session } from '../../api/types';

/** The browser's session: `null` when signed out (the api answered 401). */
export function useSession() {
  const qc = useQueryClient();
  // Any 401 means the session ended (expired, revoked, signed out in another tab).
  useEffect(() => onUnauthorized(() => qc.setQueryData(keys.session(), null)), [qc]);
  return useQuery({
    queryKey: keys.session(),
    queryFn: async ({ signal }): Promise<Session | null> => {
      try {
        return ok(await api.GET('/api/session', { signal }));
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return null;
        throw e;
      }
    },
    staleTime: 60_000,
  });
}

/** Exchanges an API key for the HttpOnly session cookie; the key is not kept anywhere. */
export function useSignIn() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: async (apiKey: string) => ok(await api.POST('/api/session', { body: { api_key: apiKey } })),
    onSuccess: async (session) => {
      qc.removeQueries({ predicate: (q) => q.queryKey[0] !== keys.session()[0] });
      qc.setQueryData(keys.session(), session);
    },
  });
}

export function useSignOut() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: async () => {
      ok(await api.DELETE('/api/session'));
    },
    onSuccess: () => {
      qc.clear();
      qc.setQueryData(keys.session(), null);
    },
  });
}
