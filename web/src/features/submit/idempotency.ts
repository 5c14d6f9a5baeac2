/** A random key; `crypto.randomUUID` only exists on secure origins, so fall back to random bytes. */
export function newKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * One Idempotency-Key per distinct submission: asking again for the same body (a double click,
 * a retry after a network error) gives the same key, so the api makes one job; a changed body
 * gets a fresh key (reusing one for a different body is a 409).
 */
export class SubmissionKeys {
  private body: string | undefined;
  private key: string | undefined;

  constructor(private readonly make: () => string = newKey) {}

  for(body: unknown): string {
    const text = JSON.stringify(body);
    if (this.key === undefined || text !== this.body) {
      this.key = this.make();
      this.body = text;
    }
    return this.key;
  }

  /** After a success, the next submission is a new one even with the same body. */
  reset(): void {
    this.key = undefined;
    this.body = undefined;
  }
}
