import type { UseQueryResult } from '@tanstack/react-query';
import { errorMessage } from '../../api/errors';
import type { JobEstimate } from '../../api/types';
import { duration, usdRange } from '../../lib/estimate';
import { num } from '../../lib/format';

/** The estimate of the job the form describes: calls, cost range and ETA, before submitting. */
export function EstimatePanel({ estimate }: { estimate: UseQueryResult<JobEstimate> }) {
  if (estimate.isPending) {
    return (
      <div className="state" role="status" aria-live="polite" style={{ padding: '0.5rem' }}>
        <span className="spinner" aria-hidden="true" /> Estimating…
      </div>
    );
  }
  if (estimate.isError) {
    return (
      <div className="alert error" role="alert">
        <strong>No estimate:</strong> {errorMessage(estimate.error)}
      </div>
    );
  }
  const e = estimate.data;
  return (
    <section aria-label="Estimate" aria-busy={estimate.isFetching}>
      <div className="stats">
        <Figure k="Images" v={num(e.images)} />
        <Figure k="Model calls, at most" v={num(e.max_calls)} />
        <Figure k="Input tokens" v={e.input_tokens.low === e.input_tokens.high ? num(e.input_tokens.low) : `${num(e.input_tokens.low)} – ${num(e.input_tokens.high)}`} />
        <Figure k="Estimated cost" v={usdRange(e.cost_usd)} />
        <Figure k="Estimated time" v={`≈ ${duration(e.eta_seconds)}`} />
      </div>
      <p className="muted" style={{ marginBottom: 0 }}>
        {e.min_calls < e.max_calls ? `${num(e.min_calls)} to ${num(e.max_calls)} calls, as filters let images through. ` : ''}
        Image tokens follow Cohere's rule for each stage's detail level
        {e.images_of_unknown_size > 0 ? `; ${num(e.images_of_unknown_size)} images of unknown size widen the range` : ''}. Prices as of{' '}
        {e.prices.as_of}. {e.calls_ahead > 0 ? `${num(e.calls_ahead)} calls of your other jobs run first. ` : ''}Your share of the model's
        budget: {num(Math.round(e.calls_per_minute))} calls a minute.
      </p>
    </section>
  );
}

function Figure({ k, v }: { k: string; v: string }) {
  return (
    <div className="stat">
      <div className="v">{v}</div>
      <div className="k">{k}</div>
    </div>
  );
}
