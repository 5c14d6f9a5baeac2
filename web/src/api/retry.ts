import { ApiError } from './errors';

/** Retry server errors and network failures, never a client error except 408 and 429. */
export function shouldRetry(failureCount: number, error: unknown): boolean {
  if (failureCount >= 3) return false;
  if (error instanceof ApiError) {
    const s = error.status;
    if (s >= 400 && s < 500) return s === 408 || s === 429;
  }
  return true;
}
