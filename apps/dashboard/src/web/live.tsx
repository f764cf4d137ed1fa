import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { CpsApiError, followEvents, type HistoryEvent } from '@cps/sdk';
import { useSession } from './session.js';

/** The state of the tab's event stream, as the banner shows it. */
export type StreamState =
  { readonly kind: 'connecting' | 'live' } | { readonly kind: 'cut'; readonly attempt: number };

type Listener = (e: HistoryEvent) => void;

interface Live {
  readonly state: StreamState;
  /** Hears every event the stream brings, until the returned function is called. */
  readonly subscribe: (l: Listener) => () => void;
}

const Context = createContext<Live>({ state: { kind: 'connecting' }, subscribe: () => () => undefined });

/**
 * The cached answers (by the first element of their query key) an event can change: an event of an
 * application or its services changes what is shown of applications; a user's (credit, tokens) what
 * is shown of users; an operation's, operations. Others (a name claimed, an identity renewed) none.
 */
const keysOf = (e: HistoryEvent): readonly string[] => {
  const kind = e.aggregate.split('.')[0];
  if (e.appId !== undefined || kind === 'app' || kind === 'svc' || kind === 'node')
    return ['apps', 'app', 'service', 'nodes', 'operation'];
  if (kind === 'user') return ['me', 'users'];
  if (kind === 'op') return ['operation'];
  return [];
};

/**
 * One event stream per signed-in tab (`followEvents` with `reconnect`): each event marks the
 * cached answers it may change as stale, and the visible ones are fetched again at once, so
 * nothing the stream carries is polled. A cut stream resumes after the last event seen; the
 * banner says so meanwhile.
 */
export const LiveProvider = ({ children }: { children: ReactNode }) => {
  const { session, api, signOut } = useSession();
  const queries = useQueryClient();
  const [state, setState] = useState<StreamState>({ kind: 'connecting' });
  const listeners = useRef(new Set<Listener>());
  useEffect(() => {
    if (!session) return;
    const abort = new AbortController();
    setState({ kind: 'connecting' });
    let pending: number | undefined;
    const stale = new Set<string>();
    const refresh = (): void => {
      pending = undefined;
      const keys = new Set(stale);
      stale.clear();
      void queries.invalidateQueries({ predicate: (q) => keys.has(String(q.queryKey[0])) });
    };
    void (async () => {
      try {
        for await (const e of followEvents(api, {
          reconnect: true,
          signal: abort.signal,
          onReconnect: (attempt) => setState({ kind: 'cut', attempt }),
          onOpen: () => setState({ kind: 'live' }),
        })) {
          for (const l of listeners.current) l(e);
          const keys = keysOf(e);
          if (keys.length === 0) continue;
          for (const k of keys) stale.add(k);
          // events come in bursts (a commit holds several): one refresh per burst
          pending ??= window.setTimeout(refresh, 0);
        }
      } catch (e) {
        if (abort.signal.aborted) return;
        if (e instanceof CpsApiError && e.status === 401) await signOut();
        else setState({ kind: 'cut', attempt: 0 });
      }
    })();
    return () => {
      abort.abort();
      if (pending !== undefined) window.clearTimeout(pending);
    };
  }, [session, api, queries, signOut]);
  const subscribe = useCallback((l: Listener) => {
    listeners.current.add(l);
    return () => void listeners.current.delete(l);
  }, []);
  const value = useMemo(() => ({ state, subscribe }), [state, subscribe]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
};

export const useLive = (): Live => useContext(Context);

/** Calls `l` for each live event while the component is mounted. */
export const useLiveEvents = (l: Listener): void => {
  const { subscribe } = useLive();
  const latest = useRef(l);
  latest.current = l;
  useEffect(() => subscribe((e) => latest.current(e)), [subscribe]);
};
