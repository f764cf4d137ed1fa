import type { ReactNode } from 'react';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from '@tanstack/react-router';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { unwrap, type HistoryEvent } from '@cps/sdk';
import { useApplication, useService, useServiceTypes } from '../api.js';
import { useLiveEvents } from '../live.js';
import { useApi } from '../session.js';
import { ActionButton, Empty, ErrorView, Loading, State, Time, field, CloudSelect, Endpoint } from '../ui.js';

/** An application: its services now (or at a past moment), and what can be done to them. */
export const AppPage = (): ReactNode => {
  const { app } = useParams({ from: '/apps/$app' });
  const api = useApi();
  const navigate = useNavigate();
  const a = useApplication(app);
  const [moment, setMoment] = useState<HistoryEvent>();
  return (
    <Loading query={a} what={`application ${app}`}>
      {() =>
        a.data && (
          <>
            <h1>
              {a.data.name} <span className="meta">application</span>
            </h1>
            {a.data.description && <p>{a.data.description}</p>}
            <div className="toolbar">
              <ActionButton
                label="Start all"
                action={() => unwrap(api.POST('/v1/applications/{app}/start', { params: { path: { app } } }))}
              />
              <ActionButton
                label="Stop all"
                action={() => unwrap(api.POST('/v1/applications/{app}/stop', { params: { path: { app } } }))}
              />
              <ExportManifest app={app} />
              <ActionButton
                label="Delete the application"
                kind="danger"
                confirm={`Delete ${app} and all its services?`}
                action={async () => {
                  await unwrap(api.DELETE('/v1/applications/{app}', { params: { path: { app } } }));
                  await navigate({ to: '/' });
                }}
              />
            </div>
            <HistorySlider app={app} onMoment={setMoment} />
            {moment ? (
              <ServicesThen app={app} at={moment} />
            ) : (
              <ServicesNow app={app} services={a.data.services} />
            )}
            <AddService app={app} />
          </>
        )
      }
    </Loading>
  );
};

type Summary = {
  serviceId: string;
  name: string;
  type: string;
  cloud: string;
  state: string;
  nodes: Record<string, number>;
};

const ServicesNow = ({ app, services }: { app: string; services: readonly Summary[] }) => {
  const api = useApi();
  return (
    <section aria-labelledby="services">
      <h2 id="services">Services</h2>
      {services.length === 0 ? (
        <Empty>No services yet. Add one below, or deploy a manifest from the applications page.</Empty>
      ) : (
        <table aria-label="services">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">State</th>
              <th scope="col">Nodes</th>
              <th scope="col">Endpoints</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {services.map((s) => (
              <tr key={s.serviceId}>
                <td>
                  <Link to="/apps/$app/services/$svc" params={{ app, svc: s.name }}>
                    {s.name}
                  </Link>
                </td>
                <td>{s.type}</td>
                <td>
                  <State value={s.state} />
                </td>
                <td>
                  {Object.entries(s.nodes)
                    .map(([role, n]) => `${n} ${role}`)
                    .join(', ') || 'none'}
                </td>
                <td>
                  <Endpoints app={app} svc={s.name} />
                </td>
                <td className="toolbar">
                  <ActionButton
                    label="Start"
                    action={() =>
                      unwrap(
                        api.POST('/v1/applications/{app}/services/{svc}/start', {
                          params: { path: { app, svc: s.name } },
                        }),
                      )
                    }
                  />
                  <ActionButton
                    label="Stop"
                    action={() =>
                      unwrap(
                        api.POST('/v1/applications/{app}/services/{svc}/stop', {
                          params: { path: { app, svc: s.name } },
                        }),
                      )
                    }
                  />
                  <ActionButton
                    label="Remove"
                    kind="danger"
                    confirm={`Remove ${s.name} and its nodes?`}
                    action={() =>
                      unwrap(
                        api.DELETE('/v1/applications/{app}/services/{svc}', {
                          params: { path: { app, svc: s.name } },
                        }),
                      )
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
};

/** A service's endpoints: an HTTP one is a link to the site. */
const Endpoints = ({ app, svc }: { app: string; svc: string }) => {
  const s = useService(app, svc);
  const endpoints = Object.entries(s.data?.endpoints ?? {});
  if (endpoints.length === 0) return <span>—</span>;
  return (
    <>
      {endpoints.map(([name, e]) => (
        <span key={name} className="chip">
          {name === 'http' || name === 'https' ? '' : `${name} `}
          <Endpoint name={name} address={e.address} port={e.port} />
        </span>
      ))}
    </>
  );
};

/** The application's services and nodes as the director rebuilt them at a past event. */
const ServicesThen = ({ app, at }: { app: string; at: HistoryEvent }) => {
  const api = useApi();
  const then = useQuery({
    queryKey: ['history', app, at.cursor],
    queryFn: () =>
      unwrap(
        api.GET('/v1/applications/{app}/history', { params: { path: { app }, query: { at: at.cursor } } }),
      ),
  });
  return (
    <section aria-labelledby="services-then">
      <h2 id="services-then">
        Services at <Time at={at.at} />
      </h2>
      <Loading query={then} what="the past">
        {() =>
          then.data && then.data.services.length > 0 ? (
            <table aria-label="services then">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Type</th>
                  <th scope="col">State</th>
                  <th scope="col">Nodes</th>
                </tr>
              </thead>
              <tbody>
                {then.data.services.map((s) => (
                  <tr key={s.serviceId}>
                    <td>{s.name}</td>
                    <td>{s.type}</td>
                    <td>
                      <State value={s.state} />
                    </td>
                    <td>
                      <ul aria-label={`nodes of ${s.name} then`} className="plain">
                        {s.nodes.map((n) => (
                          <li key={n.nodeId}>
                            <code>{n.nodeId}</code> {n.role} <State value={n.state} />
                          </li>
                        ))}
                      </ul>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No services at that moment.</Empty>
          )
        }
      </Loading>
    </section>
  );
};

/** Most events of an application the slider reaches back over. */
const HISTORY_SPAN = 2_000;

/**
 * A slider over the application's events: at its right end, the application now (live); anywhere
 * else, the application just after that event.
 */
const HistorySlider = ({
  app,
  onMoment,
}: {
  app: string;
  onMoment: (e: HistoryEvent | undefined) => void;
}) => {
  const api = useApi();
  const queries = useQueryClient();
  const events = useQuery({
    queryKey: ['app-events', app],
    queryFn: async () => {
      const all: HistoryEvent[] = [];
      for (let after: string | undefined; all.length < HISTORY_SPAN;) {
        const page = await unwrap(
          api.GET('/v1/events', {
            params: { query: { application: app, limit: 500, ...(after ? { after } : {}) } },
          }),
        );
        all.push(...page.events);
        if (!page.nextCursor) break;
        after = page.nextCursor;
      }
      return all.slice(-HISTORY_SPAN);
    },
  });
  const [index, setIndex] = useState<number>();
  useLiveEvents((e) => {
    if (events.data?.length && e.appId && events.data.some((x) => x.appId === e.appId))
      queries.setQueryData<HistoryEvent[]>(['app-events', app], (old) =>
        old ? [...old, e].slice(-HISTORY_SPAN) : old,
      );
  });
  const list = events.data ?? [];
  const last = list.length;
  const value = index ?? last;
  const at = value < last ? (list[value - 1] ?? list[0]) : undefined;
  return (
    <section aria-labelledby="history" className="history">
      <h2 id="history">History</h2>
      {events.error ? (
        <ErrorView error={events.error} what="Could not load the history" />
      ) : (
        <>
          <label>
            Show the application as it was at: <strong>{at ? <Time at={at.at} /> : 'now (live)'}</strong>
            {at && <span className="meta"> — after {at.type}</span>}
            <input
              type="range"
              min={1}
              max={Math.max(1, last)}
              value={Math.max(1, value)}
              disabled={last < 2}
              aria-valuetext={at ? `${new Date(at.at).toLocaleString()}, after ${at.type}` : 'now'}
              onChange={(e) => {
                const i = Number(e.target.value);
                const next = i >= last ? undefined : i;
                setIndex(next);
                onMoment(next === undefined ? undefined : list[i - 1]);
              }}
            />
          </label>
          {at && (
            <button
              type="button"
              onClick={() => {
                setIndex(undefined);
                onMoment(undefined);
              }}
            >
              Back to now
            </button>
          )}
        </>
      )}
    </section>
  );
};

const ExportManifest = ({ app }: { app: string }) => {
  const api = useApi();
  const [href, setHref] = useState<string>();
  const [error, setError] = useState<unknown>();
  return (
    <span className="action">
      <button
        type="button"
        onClick={() => {
          setError(undefined);
          unwrap(api.GET('/v1/applications/{app}/manifest', { params: { path: { app } } })).then(
            (m) =>
              setHref(
                URL.createObjectURL(new Blob([JSON.stringify(m, null, 2)], { type: 'application/json' })),
              ),
            setError,
          );
        }}
      >
        Export the manifest
      </button>
      {href && (
        <a href={href} download={`${app}.manifest.json`}>
          Download {app}.manifest.json
        </a>
      )}
      <ErrorView error={error} what="Could not export" />
    </span>
  );
};

const AddService = ({ app }: { app: string }) => {
  const api = useApi();
  const types = useServiceTypes();
  const queries = useQueryClient();
  const [error, setError] = useState<unknown>();
  const [added, setAdded] = useState<string>();
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setError(undefined);
    setAdded(undefined);
    try {
      const cloud = field(form, 'cloud');
      const s = await unwrap(
        api.POST('/v1/applications/{app}/services', {
          params: { path: { app } },
          body: { type: field(form, 'type'), name: field(form, 'name'), ...(cloud ? { cloud } : {}) },
        }),
      );
      setAdded(s.name);
      await queries.invalidateQueries({ queryKey: ['app', app] });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="add-service">
      <h2 id="add-service">Add a service</h2>
      <form onSubmit={(e) => void submit(e)} className="inline">
        <label>
          Type
          <select name="type" required>
            {(types.data ?? []).map((t) => (
              <option key={t.type} value={t.type}>
                {t.type}: {t.description}
              </option>
            ))}
          </select>
        </label>
        <label>
          Name
          <input
            name="name"
            required
            pattern="[a-z][a-z0-9-]*"
            title="lower-case letters, digits and dashes"
          />
        </label>
        <CloudSelect />
        <button type="submit">Add</button>
      </form>
      <p aria-live="polite">{added ? `Added ${added}; start it from the table above.` : ''}</p>
      <ErrorView error={error} what="Could not add the service" />
    </section>
  );
};
