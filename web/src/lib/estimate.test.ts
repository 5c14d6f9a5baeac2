import { describe, expect, it } from 'vitest';
import { duration, etaLeft, usd, usdRange } from './estimate';

describe('duration', () => {
  it('shows seconds under a minute, then the two largest units', () => {
    expect(duration(0)).toBe('0 s');
    expect(duration(45.4)).toBe('45 s');
    expect(duration(60)).toBe('1 min');
    expect(duration(200)).toBe('3 min 20 s');
    expect(duration(7_500)).toBe('2 h 5 min');
    expect(duration(3 * 86_400 + 4 * 3_600 + 59)).toBe('3 d 4 h');
    expect(duration(-5)).toBe('0 s');
  });
});

describe('usd', () => {
  it('keeps small amounts readable', () => {
    expect(usd(0.0042)).toBe('$0.0042');
    expect(usd(0.0110175)).toBe('$0.011');
    expect(usd(1.254)).toBe('$1.25');
    expect(usd(1234.4)).toBe('$1,234');
  });

  it('shows a range, or one figure when its ends agree', () => {
    expect(usdRange({ low: 0.011, high: 0.022 })).toBe('$0.011 – $0.022');
    expect(usdRange({ low: 0.5, high: 0.5 })).toBe('$0.500');
  });
});

describe('etaLeft', () => {
  it('counts down from the time the ETA was read, not below zero', () => {
    expect(etaLeft(60, 1_000, 1_000)).toBe(60);
    expect(etaLeft(60, 1_000, 11_500)).toBe(50);
    expect(etaLeft(5, 0, 60_000)).toBe(0);
    expect(etaLeft(null, 0, 0)).toBeNull();
  });
});
