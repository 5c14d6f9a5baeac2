// Figures of estimates and ETAs as the dashboard shows them.

/** "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h": a duration in whole seconds, two units at most. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const units: [number, string][] = [
    [86_400, 'd'],
    [3_600, 'h'],
    [60, 'min'],
    [1, 's'],
  ];
  const i = units.findIndex(([size]) => s >= size);
  const [big, bigName] = units[i]!;
  const [small, smallName] = units[i + 1]!;
  const first = Math.floor(s / big);
  const second = Math.floor((s % big) / small);
  return second > 0 ? `${first} ${bigName} ${second} ${smallName}` : `${first} ${bigName}`;
}

/** US dollars with enough digits for small amounts: "$0.0042", "$1.25", "$1,234". */
export function usd(n: number): string {
  const digits = n >= 100 ? 0 : n >= 1 ? 2 : n >= 0.01 ? 3 : 4;
  return `$${n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}

/** "$0.011 – $0.022", or one figure when both ends round to the same. */
export function usdRange(r: { low: number; high: number }): string {
  const [low, high] = [usd(r.low), usd(r.high)];
  return low === high ? low : `${low} – ${high}`;
}

/**
 * Seconds left of an ETA of `etaSeconds` read at `readAt` (ms), at `now` (ms): counts down between
 * reads, never below 0. `null` when there is no ETA (the job finished).
 */
export function etaLeft(etaSeconds: number | null | undefined, readAt: number, now: number): number | null {
  if (etaSeconds == null) return null;
  return Math.max(0, etaSeconds - Math.floor((now - readAt) / 1000));
}
