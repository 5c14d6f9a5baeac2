import type { ReactNode } from 'react';
import { ApiError, errorMessage } from '../api/errors';

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <div className="state" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {what}…
    </div>
  );
}

export function ErrorState({ error, retry, title }: { error: unknown; retry?: () => void; title?: string }) {
  const notFound = error instanceof ApiError && error.status === 404;
  return (
    <div className="alert error" role="alert">
      <strong>{title ?? (notFound ? 'Not found' : 'Could not load this')}</strong>
      <div>{errorMessage(error)}</div>
      {retry && !notFound && (
        <button type="button" onClick={retry} style={{ marginTop: '0.5rem' }}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state">{children}</div>;
}

/** Feedback for a mutation: its error, or nothing. */
export function MutationError({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div className="alert error" role="alert">
      {errorMessage(error)}
    </div>
  );
}
