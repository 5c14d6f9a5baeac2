/**
 * Parses ranges of 1-based positions like `1-10, 15, 20-25` over a list of `count` items into
 * 0-based indices (sorted, unique). Errors name the first bad part.
 */
export function parseRanges(text: string, count: number): { indices: number[]; error?: string } {
  const out = new Set<number>();
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const m = /^(\d+)\s*(?:-\s*(\d+))?$/.exec(part);
    if (!m) return { indices: [], error: `"${part}" is not a number or a range like 3-7` };
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1 || to < from) return { indices: [], error: `"${part}" is not a valid range` };
    if (from > count) return { indices: [], error: `"${part}" starts after the last image (${count})` };
    for (let i = from; i <= Math.min(to, count); i += 1) out.add(i - 1);
  }
  return { indices: [...out].sort((a, b) => a - b) };
}

/** Shift-click: sets every index between the last clicked and this one to `on`. */
export function setRange(selected: ReadonlySet<string>, ids: readonly string[], from: number, to: number, on: boolean): Set<string> {
  const next = new Set(selected);
  const [lo, hi] = from <= to ? [from, to] : [to, from];
  for (let i = Math.max(0, lo); i <= Math.min(hi, ids.length - 1); i += 1) {
    const id = ids[i]!;
    if (on) next.add(id);
    else next.delete(id);
  }
  return next;
}

/** Images whose name contains every word of the query, case-insensitively. */
export function matchesName(name: string, query: string): boolean {
  const n = name.toLowerCase();
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((w) => n.includes(w));
}
