import type { ReactNode } from 'react';
import { useState, type FormEvent } from 'react';
import { unwrap } from '@cps/sdk';
import { clientFor, useSession } from '../session.js';
import { ErrorView, field } from '../ui.js';

/** Sign in, or create an account where the platform lets anyone register. */
export const SignInPage = (): ReactNode => {
  const { signIn } = useSession();
  const [mode, setMode] = useState<'sign-in' | 'register'>('sign-in');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const username = field(form, 'username');
    const password = field(form, 'password');
    setBusy(true);
    setError(undefined);
    try {
      if (mode === 'register') await unwrap(clientFor().POST('/v1/users', { body: { username, password } }));
      await signIn(username, password);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <main className="narrow">
      <h1>{mode === 'sign-in' ? 'Sign in to cps' : 'Create an account'}</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          User name
          <input name="username" autoComplete="username" required autoFocus />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={mode === 'sign-in' ? 'current-password' : 'new-password'}
            required
          />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : mode === 'sign-in' ? 'Sign in' : 'Create the account'}
        </button>
        <ErrorView error={error} />
      </form>
      <p>
        {mode === 'sign-in' ? (
          <button type="button" className="link" onClick={() => setMode('register')}>
            No account? Create one (where the platform allows it; else ask its admin)
          </button>
        ) : (
          <button type="button" className="link" onClick={() => setMode('sign-in')}>
            I have an account: sign in
          </button>
        )}
      </p>
    </main>
  );
};
