import { useState, type ReactNode } from 'react';
import { CpsApiError } from '@cps/sdk';
import { useClouds } from './api.js';

/*
 * The dashboard's shared pieces: how an error, a state, an empty list and an action in progress
 * look. Every control is a native element with a label; focus stays visible (styles.css).
 */

/** A form's text field (an absent or file field: empty). */
export const field = (form: FormData, name: string): string => {
  const v = form.get(name);
  return typeof v === 'string' ? v : '';
};

/** An error as the director gave it: its message, its stable code, and each offending field. */
export const ErrorView = ({ error, what }: { error: unknown; what?: string }) => {
  if (!error) return null;
  const e =
    error instanceof CpsApiError
      ? error
      : new CpsApiError(0, 'unavailable', error instanceof Error ? error.message : 'unexpected error');
  return (
    <div role="alert" className="error">
      <p>
        {what ? `${what}: ` : ''}
        {e.message} <code>{e.code}</code>
      </p>
      {e.issues.length > 0 && (
        <ul aria-label="what to fix">
          {e.issues.map((i) => (
            <li key={`${i.path}:${i.code}`}>
              <code>{i.path}</code>: {i.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
};

const STATE_CLASS: Record<string, string> = {
  RUNNING: 'ok',
  running: 'ok',
  succeeded: 'ok',
  ERROR: 'bad',
  failed: 'bad',
  STOPPED: 'off',
  removed: 'off',
};

/** A service's or a node's state, as text with a colour that only repeats it. */
export const State = ({ value }: { value: string }) => (
  <span className={`state ${STATE_CLASS[value] ?? 'busy'}`}>{value}</span>
);

/** An empty list says what to do about it. */
export const Empty = ({ children }: { children: ReactNode }) => <p className="empty">{children}</p>;

/**
 * A button whose action is awaited: disabled and saying so while it runs, then its error (or
 * `done`, briefly) beside it.
 */
export const ActionButton = ({
  label,
  busyLabel,
  action,
  kind,
  confirm,
}: {
  label: string;
  busyLabel?: string;
  action: () => Promise<unknown>;
  kind?: 'danger';
  confirm?: string;
}) => {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState(false);
  return (
    <span className="action">
      <button
        type="button"
        className={kind}
        disabled={busy}
        onClick={() => {
          if (confirm && !window.confirm(confirm)) return;
          setBusy(true);
          setError(undefined);
          setDone(false);
          action().then(
            () => {
              setBusy(false);
              setDone(true);
              window.setTimeout(() => setDone(false), 2_000);
            },
            (e: unknown) => {
              setBusy(false);
              setError(e);
            },
          );
        }}
      >
        {busy ? (busyLabel ?? `${label}…`) : label}
      </button>
      <span aria-live="polite" className="feedback">
        {done ? 'done' : ''}
      </span>
      <ErrorView error={error} what={label} />
    </span>
  );
};

/** A time as the reader's clock shows it, with the exact value for machines. */
export const Time = ({ at }: { at: string | undefined }) =>
  at ? <time dateTime={at}>{new Date(at).toLocaleString()}</time> : <span>—</span>;

/** A page's loading and error states around its content. */
export const Loading = ({
  query,
  what,
  children,
}: {
  query: { isPending: boolean; error: unknown };
  what: string;
  children: () => ReactNode;
}) => {
  if (query.error) return <ErrorView error={query.error} what={`Could not load ${what}`} />;
  if (query.isPending) return <p aria-busy="true">Loading {what}…</p>;
  return <>{children()}</>;
};

/** The clouds a service's nodes may come from, the default one first chosen. */
export const CloudSelect = () => {
  const clouds = useClouds();
  return (
    <label>
      Cloud
      <select name="cloud">
        {(clouds.data ?? []).map((c) => (
          <option key={c.name} value={c.name}>
            {c.name}
            {c.default ? ' (default)' : ''}
          </option>
        ))}
      </select>
    </label>
  );
};

/** A service's endpoint: an HTTP(S) one is a link to the site, any other its address and port. */
export const Endpoint = ({ name, address, port }: { name: string; address: string; port: number }) =>
  name === 'http' || name === 'https' ? (
    <a href={`${name}://${address}:${port}/`} target="_blank" rel="noreferrer">
      {name}://{address}:{port}/
    </a>
  ) : (
    <>
      {address}:{port}
    </>
  );
