import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import { networkError, problemFrom } from './errors';

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called whenever the api answers 401: the session is gone (or never was). */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

const throwProblems: Middleware = {
  async onResponse({ response }) {
    if (response.ok || (response.status >= 300 && response.status < 400)) return undefined;
    if (response.status === 401) unauthorizedListeners.forEach((l) => l());
    throw await problemFrom(response);
  },
  onError({ error }) {
    return networkError(error);
  },
};

// Same origin: the browser sends the session cookie; no key is ever held in JavaScript.
export const api = createClient<paths>({
  baseUrl: typeof window === 'undefined' ? 'http://localhost' : window.location.origin,
  credentials: 'same-origin',
  // Looked up per call so tests can replace `fetch`.
  fetch: (request) => globalThis.fetch(request),
});
api.use(throwProblems);

/** The data of a successful call (the middleware has thrown for every failure). */
export function ok<T>(result: { data?: T; error?: unknown }): T {
  if (result.error !== undefined) throw result.error;
  return result.data as T;
}
