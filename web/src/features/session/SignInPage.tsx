import { useState, type FormEvent } from 'react';
import { useSignIn } from './hooks';
import { Field } from '../../components/Field';
import { ApiError, fieldErrorMap } from '../../api/errors';

export function SignInPage() {
  const [key, setKey] = useState('');
  const signIn = useSignIn();
  const err = signIn.error;
  const fieldError =
    err instanceof ApiError
      ? err.status === 401
        ? 'This key is not valid (unknown or revoked).'
        : fieldErrorMap(err.fieldErrors).api_key
      : undefined;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    signIn.mutate(key.trim(), { onSettled: () => setKey('') });
  };
  return (
    <form className="card stack" style={{ maxWidth: '28rem', margin: '2rem auto' }} onSubmit={submit} aria-labelledby="sign-in-title">
      <h1 id="sign-in-title" style={{ margin: 0 }}>
        Sign in
      </h1>
      <p className="muted" style={{ margin: 0 }}>
        Paste an API key of your tenant. The browser keeps only a session cookie that scripts cannot read; the key itself is not stored.
      </p>
      <Field label="API key" error={fieldError}>
        <input type="password" autoComplete="off" spellCheck={false} value={key} onChange={(e) => setKey(e.target.value)} placeholder="ipk_…" required />
      </Field>
      {err && !fieldError && (
        <div className="alert error" role="alert">
          {err.message}
        </div>
      )}
      <div>
        <button type="submit" className="primary" disabled={signIn.isPending || key.trim() === ''}>
          {signIn.isPending ? 'Signing in…' : 'Sign in'}
        </button>
      </div>
    </form>
  );
}
