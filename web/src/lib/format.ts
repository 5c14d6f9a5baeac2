const nf = new Intl.NumberFormat();

export function num(n: number): string {
  return nf.format(n);
}

export function compact(n: number): string {
  return n >= 10_000 ? new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 }).format(n) : nf.format(n);
}

/** "3 s", "5 min", "2 h", "4 d": how long ago `iso` was, relative to `now`. */
export function age(iso: string, now: number = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

export function dateTime(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '—';
}

export function bytes(n: number | null | undefined): string {
  if (n == null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function label(s: string): string {
  return s.replace(/_/g, ' ');
}

/** A short form of an id: its last 8 characters (ids are UUIDv7, whose first ones are a timestamp). */
export function shortId(id: string): string {
  return id.slice(-8);
}
