import { useState, type FormEvent } from 'react';
import { errorText } from '../errors';

/** Asks for a vendor or admin key; a refused key shows the server's own explanation. */
export function SignInPage({ signIn, notice }: { signIn(apiKey: string): Promise<void>; notice?: string }) {
  const [apiKey, setApiKey] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await signIn(apiKey.trim());
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };

  return (
    <main className="sign-in">
      <h1>pixq</h1>
      {notice && (
        <p role="status" className="notice">
          {notice}
        </p>
      )}
      <form onSubmit={submit} className="card">
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          required
          value={apiKey}
          onChange={(e) => setApiKey(e.target.value)}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </form>
      <p className="hint">Use a vendor's API key, or the operator's admin key (PIXQ_ADMIN_KEY).</p>
    </main>
  );
}
