import { useQuery } from '@tanstack/react-query';
import { api, ok } from '../../api/client';
import { ApiError } from '../../api/errors';
import { keys } from '../../api/keys';

/** Readiness of the api and its dependencies, on every page; re-read every 15 s (one request). */
export function HealthStrip() {
  const q = useQuery({
    queryKey: keys.health(),
    queryFn: async ({ signal }) => ok(await api.GET('/readyz', { signal })),
    refetchInterval: 15_000,
    retry: false,
  });
  const down = q.isError;
  const unreachable = q.error instanceof ApiError && q.error.status === 0;
  return (
    <>
      <div className="health" role="status" aria-label="System health">
        <span>
          <span className={`dot ${q.isPending ? '' : down ? 'bad' : 'ok'}`} aria-hidden="true" />
          API {q.isPending ? 'checking…' : down ? (unreachable ? 'unreachable' : 'not ready') : 'ready'}
        </span>
        {q.data && (
          <>
            <span>
              <span className={`dot ${q.data.checks.database === 'ok' ? 'ok' : 'bad'}`} aria-hidden="true" />
              database {q.data.checks.database}
            </span>
            <span>
              <span className={`dot ${q.data.checks.broker === 'ok' ? 'ok' : 'bad'}`} aria-hidden="true" />
              broker {q.data.checks.broker}
            </span>
          </>
        )}
      </div>
      {down && !q.isPending && (
        <div className="banner error" role="alert">
          {unreachable
            ? 'The api cannot be reached. Pages show what was last loaded; changes will fail until it is back.'
            : 'The api reports that its database or broker is unavailable: new work may be delayed.'}
        </div>
      )}
    </>
  );
}
