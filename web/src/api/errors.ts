import type { FieldError, Problem } from './types';

/** A failed API call, carrying the problem document the api answered with. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail || problem.title);
    this.name = 'ApiError';
    this.status = problem.status;
    this.problem = problem;
  }

  get code(): string {
    return this.problem.code;
  }

  get fieldErrors(): FieldError[] {
    return this.problem.errors ?? [];
  }
}

function isProblem(body: unknown): body is Problem {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Record<string, unknown>;
  return typeof b.status === 'number' && typeof b.code === 'string' && typeof b.title === 'string';
}

/** Reads a failed response as a problem; bodies that are not one (a proxy's HTML) become one. */
export async function problemFrom(response: Response): Promise<ApiError> {
  let body: unknown = undefined;
  try {
    body = await response.clone().json();
  } catch {
    // not JSON: fall through to a generic problem
  }
  if (isProblem(body)) return new ApiError(body);
  return new ApiError({
    type: 'about:blank',
    title: response.statusText || 'Request failed',
    status: response.status,
    code: response.status >= 500 ? 'unavailable' : 'http_error',
    detail: `The server answered ${response.status} ${response.statusText}`.trim(),
  });
}

/** A network failure (no response at all), as a problem so callers handle one error type. */
export function networkError(cause: unknown): ApiError {
  return new ApiError({
    type: 'about:blank',
    title: 'Network error',
    status: 0,
    code: 'network_error',
    detail: `The api could not be reached (${cause instanceof Error ? cause.message : String(cause)}).`,
  });
}

/**
 * The form-field key for a problem's JSON pointer: `/stages/0/prompt` → `stages.0.prompt`,
 * `""` (the body as a whole) → `root`. RFC 6901 escapes (`~1`, `~0`) are decoded.
 */
export function pointerToField(pointer: string): string {
  if (pointer === '' || pointer === '/') return 'root';
  return pointer
    .replace(/^\//, '')
    .split('/')
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

/** Field errors keyed by form-field key; several messages for one field are joined. */
export function fieldErrorMap(errors: readonly FieldError[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of errors) {
    const key = pointerToField(e.path);
    out[key] = out[key] ? `${out[key]}; ${e.message}` : e.message;
  }
  return out;
}

/** The message to show for any error thrown by a query or mutation. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return 'Something went wrong';
}
