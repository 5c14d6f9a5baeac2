import { describe, expect, it } from 'vitest';
import { SubmissionKeys } from './idempotency';

describe('submission keys', () => {
  it('gives the same key for the same body and a new one when it changes or after reset', () => {
    let n = 0;
    const keys = new SubmissionKeys(() => `k${++n}`);
    const body = { pipeline_id: 'p', library_id: 'l' };
    expect(keys.for(body)).toBe('k1');
    expect(keys.for({ ...body })).toBe('k1');
    expect(keys.for({ ...body, priority: 'high' })).toBe('k2');
    keys.reset();
    expect(keys.for({ ...body, priority: 'high' })).toBe('k3');
  });
});
