import { useEffect, useState } from 'react';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, ok } from '../../api/client';
import { keys } from '../../api/keys';
import type { SubmitJob } from '../../api/types';

/** `value`, once it has stayed the same for `ms` (so clicking through images asks once). */
function useSettled<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/**
 * What submitting `body` would take (`POST /api/jobs/estimate`: nothing is created): asked once
 * the form names a pipeline, a library and at least one image, and again when it changes.
 */
export function useJobEstimate(body: SubmitJob | undefined) {
  const settled = useSettled(body, 300);
  return useQuery({
    queryKey: keys.jobs.estimate(settled),
    enabled: settled !== undefined,
    queryFn: async ({ signal }) => ok(await api.POST('/api/jobs/estimate', { body: settled!, signal })),
    placeholderData: keepPreviousData,
    staleTime: 10_000,
  });
}
