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

/** A client for this origin's API with `apiKey`; live events stream over fetch, so the key stays in a header. */
const clientFor = (apiKey: string) => new PixqClient({ baseUrl: location.origin, apiKey, liveTransport: 'fetch' });

/** Checks `apiKey` with whoami(): the signed-in session, or the server's refusal as an error. */
async function open(apiKey: string): Promise<{ client: PixqClient; who: Who }> {
  const client = clientFor(apiKey);
  return { client, who: await client.whoami() };
}

type State = { status: 'checking' } | { status: 'signed-out' } | { status: 'signed-in'; client: PixqClient; who: Who };

/**
 * Holds the signed-in client: the sign-in page until a key is accepted, then `children`. A key kept from
 * earlier in this tab is checked again on load (it may have been revoked since).
 */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<State>(() => (sessionStorage.getItem(KEY_ITEM) ? { status: 'checking' } : { status: 'signed-out' }));

  useEffect(() => {
    const kept = sessionStorage.getItem(KEY_ITEM);
    if (!kept) return;
    open(kept).then(
      (session) => setState({ status: 'signed-in', ...session }),
      () => {
        sessionStorage.removeItem(KEY_ITEM);
        setState({ status: 'signed-out' });
      },
    );
  }, []);

  const signIn = useCallback(async (apiKey: string) => {
    const session = await open(apiKey);
    sessionStorage.setItem(KEY_ITEM, apiKey);
    setState({ status: 'signed-in', ...session });
  }, []);

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
  if (!session) return <SignInPage signIn={signIn} />;
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

/** The signed-in session; only inside SessionProvider's children, which render only once signed in. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in SessionProvider');
  return session;
}
