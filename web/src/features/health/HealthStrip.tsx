import { useQuery } from '@tanstack/react-query';
import { api, ok } from '../../api/client';
import { ApiError } from '../../api/errors';
import { keys } from '../../api/keys';
import type { SystemHealth } from '../../api/types';
import { dateTime, label } from '../../lib/format';

/**
 * The system's health on every page, re-read every 15 s (one request): the api's readiness and,
 * once signed in, the workers' circuit breakers, with a banner when the workers are paused.
 */
export function HealthStrip({ signedIn }: { signedIn: boolean }) {
  const q = useQuery({
    queryKey: [...keys.health(), signedIn],
    queryFn: async ({ signal }): Promise<Pick<SystemHealth, 'checks'> & Partial<SystemHealth>> => {
      if (signedIn) return ok(await api.GET('/api/health', { signal }));
      // Before sign-in only the public readiness probe answers.
      const { checks } = ok(await api.GET('/readyz', { signal }));
      return { checks };
    },
    refetchInterval: 15_000,
    retry: false,
  });
  const unreachable = q.error instanceof ApiError && q.error.status === 0;
  const checks = q.data?.checks;
  const workers = q.data?.workers;
  const open = workers?.breakers.filter((b) => b.state === 'open') ?? [];
  return (
    <>
      <div className="health" role="region" aria-label="System health">
        <span>
          <span className={`dot ${q.isPending ? '' : q.isError ? 'bad' : 'ok'}`} aria-hidden="true" />
          API {q.isPending ? 'checking…' : q.isError ? (unreachable ? 'unreachable' : 'not ready') : 'ready'}
        </span>
        {checks && (
          <>
            <span>
              <span className={`dot ${checks.database === 'ok' ? 'ok' : 'bad'}`} aria-hidden="true" />
              database {checks.database}
            </span>
            <span>
              <span className={`dot ${checks.broker === 'ok' ? 'ok' : 'bad'}`} aria-hidden="true" />
              broker {checks.broker}
            </span>
          </>
        )}
        {workers && (
          <span>
            <span className={`dot ${workers.paused ? 'bad' : workers.breakers.some((b) => b.state !== 'closed') ? 'warn' : 'ok'}`} aria-hidden="true" />
            workers {workers.paused ? 'paused' : 'running'}
            {workers.breakers.map((b) => (
              <span key={b.model} className="muted">
                {' '}
                · {b.model}: {label(b.state)}
              </span>
            ))}
          </span>
        )}
      </div>
      {q.isError && (
        <div className="banner error" role="alert">
          {unreachable
            ? 'The api cannot be reached. Pages show what was last loaded; changes will fail until it is back.'
            : 'The api reports that its database or broker is unavailable: new work may be delayed.'}
        </div>
      )}
      {workers?.key_rejected ? (
        <div className="banner error" role="alert">
          Cohere rejected the API key: the workers are paused until the key is fixed. Jobs wait; nothing is lost.
        </div>
      ) : (
        open.length > 0 && (
          <div className="banner warn" role="alert">
            Workers are paused for {open.map((b) => b.model).join(', ')}: the circuit breaker is open
            {open[0]?.reason ? ` (${open[0].reason})` : ''}
            {open[0]?.open_until ? `; next try at ${dateTime(open[0].open_until)}` : ''}. Jobs wait and resume on their own.
          </div>
        )
      )}
      {q.data?.status === 'degraded' && !q.isError && (
        <div className="banner warn" role="alert">
          The api is degraded: {Object.entries(q.data.checks).filter(([, v]) => v !== 'ok').map(([k]) => k).join(', ') || 'a dependency'} unavailable.
        </div>
      )}
    </>
  );
}
