import { useState } from 'react';
import Form from '@rjsf/core';
import { formValidator } from '../form-validator.js';
import type { RJSFSchema } from '@rjsf/utils';
import { unwrap } from '@cps/sdk';
import type { ServiceType } from '../api.js';
import { useApi } from '../session.js';
import { ErrorView } from '../ui.js';

type Method = ServiceType['methods'][number];

/**
 * A service type's own methods (php code versions, mysql backups, storage volumes...), each a form
 * generated from its JSON Schema; the answer is shown below it, as a table when it is a list of
 * records.
 */
const Methods = ({ app, svc, methods }: { app: string; svc: string; methods: readonly Method[] }) => {
  const [name, setName] = useState(methods[0]?.name ?? '');
  const method = methods.find((m) => m.name === name);
  if (methods.length === 0) return null;
  return (
    <section aria-labelledby="methods">
      <h2 id="methods">Methods</h2>
      <label>
        Method
        <select value={name} onChange={(e) => setName(e.target.value)}>
          {methods.map((m) => (
            <option key={m.name} value={m.name}>
              {m.name}
            </option>
          ))}
        </select>
      </label>
      {method && <MethodForm key={method.name} app={app} svc={svc} method={method} />}
    </section>
  );
};
export default Methods;

const MethodForm = ({ app, svc, method }: { app: string; svc: string; method: Method }) => {
  const api = useApi();
  const [result, setResult] = useState<unknown>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const schema = { ...(method.args as RJSFSchema), title: undefined } as RJSFSchema;
  const call = (args: unknown) => {
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    unwrap(
      api.POST('/v1/applications/{app}/services/{svc}/calls/{method}', {
        params: { path: { app, svc, method: method.name } },
        body: (args ?? {}) as Record<string, never>,
      }),
    )
      .then((r) => setResult(r.result), setError)
      .finally(() => setBusy(false));
  };
  const submit = (
    <button type="submit" disabled={busy}>
      {busy ? `Calling ${method.name}…` : `Call ${method.name}`}
    </button>
  );
  // a method without arguments is a button, not an empty form
  const takesNothing =
    Object.keys(schema.properties ?? {}).length === 0 && !schema.additionalProperties && !schema.anyOf;
  return (
    <div className="method">
      <p>{method.description}</p>
      {takesNothing ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            call({});
          }}
        >
          {submit}
        </form>
      ) : (
        <Form
          schema={schema}
          validator={formValidator}
          idPrefix={`m-${method.name}`}
          disabled={busy}
          showErrorList="top"
          onSubmit={({ formData }) => call(formData)}
        >
          {submit}
        </Form>
      )}
      <ErrorView error={error} what={`${method.name} failed`} />
      {result !== undefined && <Result value={result} name={method.name} />}
    </div>
  );
};

/** A list of records as a table; anything else as JSON. */
const Result = ({ value, name }: { value: unknown; name: string }) => {
  const rows = Array.isArray(value)
    ? value
    : value && typeof value === 'object'
      ? Object.values(value).find((v) => Array.isArray(v))
      : undefined;
  const records =
    Array.isArray(rows) &&
    rows.length > 0 &&
    rows.every((r) => r && typeof r === 'object' && !Array.isArray(r));
  const columns = records
    ? [...new Set((rows as Record<string, unknown>[]).flatMap((r) => Object.keys(r)))]
    : [];
  return (
    <div role="status" aria-label={`result of ${name}`}>
      <h3>Result</h3>
      {records && (
        <table>
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c} scope="col">
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {(rows as Record<string, unknown>[]).map((r, i) => (
              <tr key={i}>
                {columns.map((c) => (
                  <td key={c}>{typeof r[c] === 'string' ? r[c] : JSON.stringify(r[c] ?? '')}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <pre className="json">{JSON.stringify(value, null, 2)}</pre>
    </div>
  );
};
