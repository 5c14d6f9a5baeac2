import type { QueryClient, QueryKey, UseMutationOptions } from '@tanstack/react-query';

/**
 * Mutation options that invalidate the queries the change touched, then run the caller's
 * `onSuccess`. Every mutation hook is built with this, so none forgets its invalidation.
 */
export function invalidating<TData, TVars>(
  qc: QueryClient,
  mutationFn: (vars: TVars) => Promise<TData>,
  touched: (data: TData, vars: TVars) => QueryKey[],
  options: Omit<UseMutationOptions<TData, Error, TVars>, 'mutationFn'> = {},
): UseMutationOptions<TData, Error, TVars> {
  return {
    ...options,
    mutationFn,
    onSuccess: async (data, vars, onMutateResult, context) => {
      await Promise.all(touched(data, vars).map((queryKey) => qc.invalidateQueries({ queryKey })));
      await options.onSuccess?.(data, vars, onMutateResult, context);
    },
  };
}
