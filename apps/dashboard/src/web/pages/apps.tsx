import type { ReactNode } from 'react';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from '@tanstack/react-router';
import { useQueryClient } from '@tanstack/react-query';
import { unwrap } from '@cps/sdk';
import { useApplications, useMe, useOperation } from '../api.js';
import { useApi } from '../session.js';
import { ActionButton, Empty, ErrorView, Loading, State, field } from '../ui.js';

/** The user's applications, and the two ways to make one: by name, or from a manifest. */
export const AppsPage = (): ReactNode => {
  const apps = useApplications();
  const me = useMe();
  return (
    <>
      <h1>Applications</h1>
      {me.data && (
        <p className="meta">
          Credit left: <strong>{me.data.credit}</strong>
        </p>
      )}
      <Loading query={apps} what="your applications">
        {() =>
          apps.data && apps.data.length > 0 ? (
            <table aria-label="applications">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Services</th>
                  <th scope="col">Nodes</th>
                  <th scope="col">Description</th>
                </tr>
              </thead>
              <tbody>
                {apps.data.map((a) => (
                  <tr key={a.appId}>
                    <td>
                      <Link to="/apps/$app" params={{ app: a.name }}>
                        {a.name}
                      </Link>
                    </td>
                    <td>
                      {a.services.length === 0
                        ? 'none'
                        : a.services.map((s) => (
                            <span key={s.serviceId} className="chip">
                              {s.name} <State value={s.state} />
                            </span>
                          ))}
                    </td>
                    <td>
                      {a.services.reduce((n, s) => n + Object.values(s.nodes).reduce((x, y) => x + y, 0), 0)}
                    </td>
                    <td>{a.description}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>
              No applications yet. Deploy a manifest below, or create an empty application and add services to
              it.
            </Empty>
          )
        }
      </Loading>
      <DeployManifest />
      <CreateApplication />
    </>
  );
};

const CreateApplication = () => {
  const api = useApi();
  const navigate = useNavigate();
  const queries = useQueryClient();
  const [error, setError] = useState<unknown>();
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setError(undefined);
    try {
      const a = await unwrap(
        api.POST('/v1/applications', {
          body: { name: field(form, 'name'), description: field(form, 'description') },
        }),
      );
      await queries.invalidateQueries({ queryKey: ['apps'] });
      await navigate({ to: '/apps/$app', params: { app: a.name } });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="create-app">
      <h2 id="create-app">Create an empty application</h2>
      <form onSubmit={(e) => void submit(e)} className="inline">
        <label>
          Name
          <input
            name="name"
            required
            pattern="[a-z][a-z0-9-]*"
            title="lower-case letters, digits and dashes"
          />
        </label>
        <label>
          Description
          <input name="description" />
        </label>
        <button type="submit">Create</button>
      </form>
      <ErrorView error={error} what="Could not create the application" />
    </section>
  );
};

/**
 * A manifest (ConPaaS's JSON format) pasted or read from a file: checked first, its problems
 * shown at their path; deployed as one operation whose steps appear as they happen.
 */
export const DeployManifest = () => {
  const api = useApi();
  const [text, setText] = useState('');
  const [error, setError] = useState<unknown>();
  const [issues, setIssues] = useState<readonly { path: string; message: string }[]>([]);
  const [operation, setOperation] = useState<{ id: string; app?: string }>();
  const op = useOperation(operation?.id);
  const parse = (): unknown => {
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new Error(`not JSON: ${(e as Error).message}`, { cause: e });
    }
  };
  const deploy = async () => {
    setError(undefined);
    setIssues([]);
    const manifest = parse();
    const checked = await unwrap(api.POST('/v1/manifests/validate', { body: manifest }));
    if (!checked.valid) {
      setIssues(checked.issues);
      return;
    }
    const d = await unwrap(api.POST('/v1/manifests', { body: manifest }));
    const name = (manifest as { Application?: unknown }).Application;
    setOperation({ id: d.operationId, ...(typeof name === 'string' ? { app: name } : {}) });
  };
  return (
    <section aria-labelledby="deploy">
      <h2 id="deploy">Deploy a manifest</h2>
      <label>
        Manifest (JSON)
        <textarea
          name="manifest"
          rows={10}
          value={text}
          spellCheck={false}
          onChange={(e) => setText(e.target.value)}
          placeholder='{ "Application": "shop", "Services": [ { "Type": "php", "ServiceName": "web" } ] }'
        />
      </label>
      <label>
        Or read it from a file
        <input
          type="file"
          accept=".json,application/json"
          onChange={(e) => void e.target.files?.[0]?.text().then(setText)}
        />
      </label>
      <ActionButton
        label="Deploy"
        busyLabel="Deploying…"
        action={() => deploy().catch((e: unknown) => setError(e))}
      />
      {issues.length > 0 && (
        <div role="alert" className="error">
          <p>The manifest was not deployed; fix these first:</p>
          <ul aria-label="manifest problems">
            {issues.map((i) => (
              <li key={`${i.path}:${i.message}`}>
                <code>{i.path}</code>: {i.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      <ErrorView error={error} what="The manifest was not deployed" />
      {operation && (
        <div role="status" className="operation">
          Deployment <State value={op.data?.state ?? 'running'} />
          {op.data?.steps && op.data.steps.length > 0 && <span> — {op.data.steps.at(-1)}</span>}
          {op.data?.reason && <span> — {op.data.reason}</span>}
          {operation.app && (
            <>
              {' '}
              <Link to="/apps/$app" params={{ app: operation.app }}>
                Open {operation.app}
              </Link>
            </>
          )}
        </div>
      )}
    </section>
  );
};
