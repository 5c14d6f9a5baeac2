import { useCallback, useMemo } from 'react';
import { useSearchParams } from 'react-router';

/** Query-string state: each key has a default, which is left out of the URL. */
export type UrlDefaults = Record<string, string | number>;
type Values<T extends UrlDefaults> = { [K in keyof T]: T[K] extends number ? number : string };

export function readParams<T extends UrlDefaults>(search: URLSearchParams, defaults: T): Values<T> {
  const out: Record<string, string | number> = {};
  for (const [key, def] of Object.entries(defaults)) {
    const raw = search.get(key);
    if (raw === null) out[key] = def;
    else if (typeof def === 'number') {
      const n = Number(raw);
      out[key] = Number.isFinite(n) && n >= 0 ? Math.floor(n) : def;
    } else out[key] = raw;
  }
  return out as Values<T>;
}

/**
 * The query string after applying `patch`. Changing anything but the page (or the open drawer)
 * goes back to the first page, so a narrower filter never lands on an empty page.
 */
export function writeParams<T extends UrlDefaults>(
  search: URLSearchParams,
  patch: Partial<Values<T>>,
  defaults: T,
): URLSearchParams {
  const next = new URLSearchParams(search);
  const keys = Object.keys(patch);
  for (const key of keys) {
    const value = (patch as Record<string, string | number | undefined>)[key];
    if (value === undefined || value === '' || value === defaults[key]) next.delete(key);
    else next.set(key, String(value));
  }
  const resetsPage = keys.some((k) => k !== 'page' && k !== 'image');
  if ('page' in defaults && resetsPage && !keys.includes('page')) next.delete('page');
  next.sort();
  return next;
}

export function useUrlState<T extends UrlDefaults>(defaults: T) {
  const [search, setSearch] = useSearchParams();
  const values = useMemo(() => readParams(search, defaults), [search, defaults]);
  const update = useCallback(
    (patch: Partial<Values<T>>, opts: { replace?: boolean } = {}) =>
      setSearch((prev) => writeParams(prev, patch, defaults), { replace: opts.replace ?? false }),
    [setSearch, defaults],
  );
  return [values, update] as const;
}
