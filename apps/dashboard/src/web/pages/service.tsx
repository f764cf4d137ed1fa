import type { ReactNode } from 'react';
import { lazy, Suspense, useEffect, useRef, useState, type FormEvent } from 'react';
import { Link, useParams } from '@tanstack/react-router';
import { useQuery } from '@tanstack/react-query';
import { unwrap } from '@cps/sdk';
import { useNodes, useService, useServiceTypes, type Node } from '../api.js';
import { useApi } from '../session.js';
import { ActionButton, Empty, ErrorView, Loading, State, Time, field, CloudSelect, Endpoint } from '../ui.js';
import { Chart, type Series } from '../chart.js';

/** The type's methods as generated forms: react-jsonschema-form is loaded with them only. */
const Methods = lazy(() => import('./methods.js'));

/** How often the figures of the heartbeats (not in the event stream) are sampled for the charts. */
const SAMPLE_MS = 5_000;

/** A service: its nodes by role, their logs and figures, and the type's own methods. */
const ServicePage = (): ReactNode => {
  const { app, svc } = useParams({ from: '/apps/$app/services/$svc' });
  const s = useService(app, svc);
  const nodes = useNodes(app, svc);
  const types = useServiceTypes();
  const type = types.data?.find((t) => t.type === s.data?.type);
  return (
    <Loading query={s} what={`service ${svc}`}>
      {() =>
        s.data && (
          <>
            <p className="crumbs">
              <Link to="/apps/$app" params={{ app }}>
                {app}
              </Link>{' '}
              /
            </p>
            <h1>
              {s.data.name} <span className="meta">{s.data.type} service</span> <State value={s.data.state} />
            </h1>
            <dl className="facts">
              <dt>Cloud</dt>
              <dd>{s.data.cloud}</dd>
              <dt>Code</dt>
              <dd>{s.data.archive ? `version ${s.data.archive.version}` : 'none uploaded'}</dd>
              {Object.entries(s.data.endpoints).map(([name, e]) => (
                <div key={name}>
                  <dt>{name}</dt>
                  <dd>
                    <Endpoint name={name} address={e.address} port={e.port} />
                  </dd>
                </div>
              ))}
            </dl>
            <UploadCode app={app} svc={svc} />
            <Loading query={nodes} what="the nodes">
              {() => <Nodes app={app} svc={svc} nodes={nodes.data ?? []} />}
            </Loading>
            <AddNodes app={app} svc={svc} roles={type?.roles ?? []} />
            <Figures app={app} svc={svc} />
            <Logs app={app} svc={svc} nodes={nodes.data ?? []} />
            {type && (
              <Suspense fallback={<p aria-busy="true">Loading the methods…</p>}>
                <Methods app={app} svc={svc} methods={type.methods} />
              </Suspense>
            )}
          </>
        )
      }
    </Loading>
  );
};
export default ServicePage;

/** The service's code: an archive (tar.gz, tar or zip) uploaded and made current. */
const UploadCode = ({ app, svc }: { app: string; svc: string }) => {
  const api = useApi();
  const [error, setError] = useState<unknown>();
  const [uploaded, setUploaded] = useState<string>();
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const file = new FormData(e.currentTarget).get('archive');
    setError(undefined);
    setUploaded(undefined);
    if (!(file instanceof File) || file.size === 0) return setError(new Error('choose an archive first'));
    try {
      const r = await unwrap(
        api.PUT('/v1/applications/{app}/services/{svc}/archive', {
          params: { path: { app, svc }, query: { enable: 'true' } },
          body: (await file.arrayBuffer()) as never,
          bodySerializer: (b: unknown) => b as ArrayBuffer,
          headers: { 'content-type': 'application/octet-stream' },
        }),
      );
      setUploaded(`Uploaded version ${r.version} (${r.size} bytes); it is the code now.`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="code">
      <h2 id="code">Code</h2>
      <form className="inline" onSubmit={(e) => void submit(e)}>
        <label>
          Archive (tar.gz, tar or zip)
          <input name="archive" type="file" accept=".tar.gz,.tgz,.tar,.zip" />
        </label>
        <button type="submit">Upload</button>
      </form>
      <p aria-live="polite">{uploaded}</p>
      <ErrorView error={error} what="Could not upload the code" />
    </section>
  );
};

const bytes = (n: number | undefined) => (n === undefined ? '—' : `${(n / 1048576).toFixed(0)} MiB`);

const Nodes = ({ app, svc, nodes }: { app: string; svc: string; nodes: readonly Node[] }) => {
  const api = useApi();
  const roles = [...new Set(nodes.map((n) => n.role))].sort();
  if (nodes.length === 0)
    return (
      <section aria-labelledby="nodes">
        <h2 id="nodes">Nodes</h2>
        <Empty>No nodes: start the service, or add nodes below.</Empty>
      </section>
    );
  return (
    <section aria-labelledby="nodes">
      <h2 id="nodes">Nodes</h2>
      {roles.map((role) => (
        <table key={role} aria-label={`${role} nodes`}>
          <caption>{role}</caption>
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">State</th>
              <th scope="col">Address</th>
              <th scope="col">Heartbeat</th>
              <th scope="col">CPU</th>
              <th scope="col">Memory</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {nodes
              .filter((n) => n.role === role)
              .map((n) => (
                <tr key={n.nodeId} data-node={n.nodeId}>
                  <td>
                    <code>{n.nodeId}</code>
                  </td>
                  <td>
                    <State value={n.state} />
                    {n.reason && <span className="meta"> {n.reason}</span>}
                  </td>
                  <td>{n.address ?? '—'}</td>
                  <td>
                    <Time at={n.lastHeartbeat} />
                  </td>
                  <td>
                    {n.metrics?.['cpuPercent'] === undefined
                      ? '—'
                      : `${n.metrics['cpuPercent'].toFixed(0)} %`}
                  </td>
                  <td>{bytes(n.metrics?.['rssBytes'])}</td>
                  <td>
                    <ActionButton
                      label="Remove"
                      kind="danger"
                      confirm={`Remove node ${n.nodeId}?`}
                      action={() =>
                        unwrap(
                          api.DELETE('/v1/applications/{app}/services/{svc}/nodes', {
                            params: { path: { app, svc } },
                            body: { nodeIds: [n.nodeId] },
                          }),
                        )
                      }
                    />
                  </td>
                </tr>
              ))}
          </tbody>
        </table>
      ))}
    </section>
  );
};

const AddNodes = ({ app, svc, roles }: { app: string; svc: string; roles: readonly string[] }) => {
  const api = useApi();
  const [error, setError] = useState<unknown>();
  const [accepted, setAccepted] = useState<string>();
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setError(undefined);
    setAccepted(undefined);
    const cloud = field(form, 'cloud');
    try {
      await unwrap(
        api.POST('/v1/applications/{app}/services/{svc}/nodes', {
          params: { path: { app, svc } },
          body: { nodes: { [field(form, 'role')]: Number(form.get('count')) }, ...(cloud ? { cloud } : {}) },
        }),
      );
      setAccepted('Asked for; the nodes appear above as they start.');
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="add-nodes">
      <h2 id="add-nodes">Add nodes</h2>
      <form className="inline" onSubmit={(e) => void submit(e)}>
        <label>
          Role
          <select name="role">
            {roles.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          How many
          <input name="count" type="number" min={1} max={20} defaultValue={1} required />
        </label>
        <CloudSelect />
        <button type="submit">Add nodes</button>
      </form>
      <p aria-live="polite">{accepted}</p>
      <ErrorView error={error} what="Could not add nodes" />
    </section>
  );
};

/**
 * The heartbeats' figures over the last minutes, sampled while the page is open: the node count
 * and, per node, whichever figure is chosen (CPU, memory, the type's own: requests/s, queries/s,
 * replication lag...).
 */
const Figures = ({ app, svc }: { app: string; svc: string }) => {
  const api = useApi();
  const [samples, setSamples] = useState<{ t: number; nodes: Node[] }[]>([]);
  const [metric, setMetric] = useState('cpuPercent');
  useEffect(() => {
    let stop = false;
    const sample = async () => {
      const r = await api.GET('/v1/applications/{app}/services/{svc}/nodes', {
        params: { path: { app, svc } },
      });
      if (!stop && r.data)
        setSamples((old) => [...old, { t: Date.now() / 1000, nodes: r.data.nodes }].slice(-120));
    };
    void sample();
    const timer = window.setInterval(() => void sample(), SAMPLE_MS);
    return () => {
      stop = true;
      window.clearInterval(timer);
    };
  }, [api, app, svc]);
  const names = [
    ...new Set(samples.flatMap((s) => s.nodes.flatMap((n) => Object.keys(n.metrics ?? {})))),
  ].sort();
  const ids = [...new Set(samples.flatMap((s) => s.nodes.map((n) => n.nodeId)))];
  const times = samples.map((s) => s.t);
  const perNode: Series[] = ids.map((id) => ({
    label: id,
    values: samples.map((s) => s.nodes.find((n) => n.nodeId === id)?.metrics?.[metric] ?? null),
  }));
  const count: Series[] = [
    {
      label: 'running nodes',
      values: samples.map((s) => s.nodes.filter((n) => n.state === 'running').length),
    },
  ];
  return (
    <section aria-labelledby="figures">
      <h2 id="figures">Figures</h2>
      {samples.length < 2 ? (
        <p aria-busy="true">Collecting figures (every {SAMPLE_MS / 1000} s)…</p>
      ) : (
        <div className="charts">
          <Chart title="Running nodes" times={times} series={count} />
          <div>
            <label>
              Figure per node
              <select value={metric} onChange={(e) => setMetric(e.target.value)}>
                {names.map((n) => (
                  <option key={n}>{n}</option>
                ))}
              </select>
            </label>
            <Chart title={metric} times={times} series={perNode} />
          </div>
        </div>
      )}
    </section>
  );
};

/** A node's log (its workloads' output), followed while `Follow` is on. */
const Logs = ({ app, svc, nodes }: { app: string; svc: string; nodes: readonly Node[] }) => {
  const api = useApi();
  const [node, setNode] = useState<string>('');
  const [follow, setFollow] = useState(true);
  const chosen = node || nodes.find((n) => n.state === 'running')?.nodeId || '';
  const logs = useQuery({
    queryKey: ['logs', app, svc, chosen],
    enabled: chosen !== '',
    // the logs are not events: followed by asking again while the box is ticked
    refetchInterval: follow ? 2_000 : false,
    queryFn: async () =>
      (
        await unwrap(
          api.GET('/v1/applications/{app}/services/{svc}/logs', {
            params: { path: { app, svc }, query: { node: chosen, tailBytes: 16_384 } },
          }),
        )
      ).text,
  });
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    if (box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [logs.data]);
  return (
    <section aria-labelledby="logs">
      <h2 id="logs">Logs</h2>
      <div className="inline">
        <label>
          Node
          <select value={chosen} onChange={(e) => setNode(e.target.value)}>
            {nodes.map((n) => (
              <option key={n.nodeId} value={n.nodeId}>
                {n.nodeId} ({n.role}, {n.state})
              </option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
        </label>
      </div>
      {chosen === '' ? (
        <Empty>No node to show the logs of.</Empty>
      ) : logs.error ? (
        <ErrorView error={logs.error} what="Could not read the logs" />
      ) : (
        <pre ref={box} className="logs" tabIndex={0} aria-label={`log of ${chosen}`}>
          {logs.data ?? 'Loading…'}
        </pre>
      )}
    </section>
  );
};
