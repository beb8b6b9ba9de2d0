import { PixqClient, type WhoAmI } from '@pixq/client';
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { navigate } from 'wouter/use-browser-location';
import { SignInPage } from './pages/SignIn';

/** Whose key is signed in: a vendor's (its id and name) or the operator's. */
export type Who = WhoAmI;

export interface Session {
  client: PixqClient;
  who: Who;
  signOut(): void;
}

/** The key lives in sessionStorage only: gone when the tab closes, never sent anywhere but the API's header. */
const KEY_ITEM = 'pixq.apiKey';

const SessionContext = createContext<Session | undefined>(undefined);

/**
 * Checks `apiKey` with whoami(): the signed-in session, or the server's refusal as an error. The client is for
 * this origin's API; live events stream over fetch, so the key stays in a header. Once signed in, a 401 on
 * any call (the key was revoked, the vendor deleted) tells `refused` with that client.
 */
async function open(apiKey: string, refused: (client: PixqClient) => void): Promise<{ client: PixqClient; who: Who }> {
  let accepted = false;
  const client: PixqClient = new PixqClient({
    baseUrl: location.origin,
    apiKey,
    liveTransport: 'fetch',
    fetch: async (input, init) => {
      const res = await fetch(input, init);
      if (res.status === 401 && accepted) refused(client);
      return res;
    },
  });
  const who = await client.whoami();
  accepted = true;
  return { client, who };
}

type State =
  | { status: 'checking' }
  | { status: 'signed-out'; notice?: string }
  | { status: 'signed-in'; client: PixqClient; who: Who };

/**
 * Holds the signed-in client: the sign-in page until a key is accepted, then `children`. A key kept from
 * earlier in this tab is checked again on load, and a key refused later signs the tab out.
 */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>(() =>
    sessionStorage.getItem(KEY_ITEM) ? { status: 'checking' } : { status: 'signed-out' },
  );

  const refused = useCallback((client: PixqClient) => {
    // Only the current session's client: a late answer to a session already left changes nothing.
    setState((current) => {
      if (current.status !== 'signed-in' || current.client !== client) return current;
      sessionStorage.removeItem(KEY_ITEM);
      return { status: 'signed-out', notice: 'The server no longer accepts this key. Sign in again.' };
    });
  }, []);

  useEffect(() => {
    const kept = sessionStorage.getItem(KEY_ITEM);
    if (!kept) return;
    open(kept, refused).then(
      (session) => setState({ status: 'signed-in', ...session }),
      () => {
        sessionStorage.removeItem(KEY_ITEM);
        setState({ status: 'signed-out' });
      },
    );
  }, [refused]);

  const signIn = useCallback(
    async (apiKey: string) => {
      const session = await open(apiKey, refused);
      sessionStorage.setItem(KEY_ITEM, apiKey);
      setState({ status: 'signed-in', ...session });
    },
    [refused],
  );

  const signOut = useCallback(() => {
    sessionStorage.removeItem(KEY_ITEM);
    setState({ status: 'signed-out' });
    navigate('/sign-in');
  }, []);

  const session = useMemo(
    () => (state.status === 'signed-in' ? { client: state.client, who: state.who, signOut } : undefined),
    [state, signOut],
  );

  if (state.status === 'checking') return <p className="loading">Checking your key…</p>;
  if (!session) return <SignInPage signIn={signIn} notice={state.status === 'signed-out' ? state.notice : undefined} />;
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

/** The signed-in session; only inside SessionProvider's children, which render only once signed in. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in SessionProvider');
  return session;
}
