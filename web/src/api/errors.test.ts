import { describe, expect, it } from 'vitest';
import { ApiError, fieldErrorMap, pointerToField, problemFrom } from './errors';
import { shouldRetry } from './retry';

const problem = (status: number) => new ApiError({ type: '/problems/x', title: 't', status, code: 'x', detail: 'd' });

describe('problem pointers', () => {
  it('maps JSON pointers to form-field keys', () => {
    expect(pointerToField('/stages/0/prompt')).toBe('stages.0.prompt');
    expect(pointerToField('/stages/1/filter/filters/0/pattern')).toBe('stages.1.filter.filters.0.pattern');
    expect(pointerToField('')).toBe('root');
    expect(pointerToField('/a~1b/c~0d')).toBe('a/b.c~d');
  });

  it('joins several messages for one field', () => {
    expect(fieldErrorMap([
      { path: '/name', message: 'must not be blank' },
      { path: '/name', message: 'too long' },
      { path: '', message: 'bad body' },
    ])).toEqual({ name: 'must not be blank; too long', root: 'bad body' });
  });

  it('reads problem bodies and wraps anything else', async () => {
    const body = { type: '/problems/validation_failed', title: 'Unprocessable', status: 422, code: 'validation_failed', detail: '1 invalid field', errors: [{ path: '/name', message: 'x' }] };
    const e = await problemFrom(new Response(JSON.stringify(body), { status: 422 }));
    expect(e.code).toBe('validation_failed');
    expect(e.fieldErrors).toHaveLength(1);
    const g = await problemFrom(new Response('<html>', { status: 502, statusText: 'Bad Gateway' }));
    expect(g.status).toBe(502);
    expect(g.message).toContain('502');
  });
});

describe('retry policy', () => {
  it('does not retry client errors except 408 and 429', () => {
    expect(shouldRetry(0, problem(404))).toBe(false);
    expect(shouldRetry(0, problem(422))).toBe(false);
    expect(shouldRetry(0, problem(401))).toBe(false);
    expect(shouldRetry(0, problem(408))).toBe(true);
    expect(shouldRetry(0, problem(429))).toBe(true);
    expect(shouldRetry(0, problem(503))).toBe(true);
    expect(shouldRetry(0, new TypeError('network'))).toBe(true);
    expect(shouldRetry(3, problem(503))).toBe(false);
  });
});
