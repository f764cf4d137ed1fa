import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';
import { createCpsClient, unwrap, type components, type CpsClient } from '@cps/sdk';

export type User = components['schemas']['User'];

/** A signed-in tab: its session token and user. */
export interface Session {
  readonly token: string;
  readonly user: User;
}

/**
 * The session lives in this tab only: in memory and in `sessionStorage` (a reload keeps it, another
 * tab or a closed browser does not). The director's Content-Security-Policy keeps script of any
 * other origin, and inline script, from reading it.
 */
const KEY = 'cps.session';

const stored = (): Session | undefined => {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
    return s && typeof s.token === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
};

interface SessionContext {
  readonly session: Session | undefined;
  /** The director's client, signed in when there is a session. */
  readonly api: CpsClient;
  readonly signIn: (username: string, password: string) => Promise<void>;
  readonly signOut: () => Promise<void>;
}

const Context = createContext<SessionContext | undefined>(undefined);

/** A client of the director this page came from: signed in with `token`, or anonymous. */
export const clientFor = (token?: string): CpsClient =>
  createCpsClient({ url: location.origin, ...(token ? { token } : {}) });

export const SessionProvider = ({ children }: { children: ReactNode }) => {
  const [session, setSession] = useState(stored);
  const api = useMemo(() => clientFor(session?.token), [session?.token]);
  const signIn = useCallback(async (username: string, password: string) => {
    const s = await unwrap(clientFor().POST('/v1/sessions', { body: { username, password } }));
    const next = { token: s.token, user: s.user };
    sessionStorage.setItem(KEY, JSON.stringify(next));
    setSession(next);
  }, []);
  // the page forgets the session at once; the director is told to end it meanwhile
  const signOut = useCallback(async () => {
    sessionStorage.removeItem(KEY);
    setSession(undefined);
    await api.DELETE('/v1/sessions/current').catch(() => undefined);
  }, [api]);
  const value = useMemo(() => ({ session, api, signIn, signOut }), [session, api, signIn, signOut]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
};

export const useSession = (): SessionContext => {
  const c = useContext(Context);
  if (!c) throw new Error('useSession outside SessionProvider');
  return c;
};

/** The signed-in client (pages under the signed-in layout only). */
export const useApi = (): CpsClient => useSession().api;
