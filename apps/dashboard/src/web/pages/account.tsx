import type { ReactNode } from 'react';
import { useState, type FormEvent } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { unwrap } from '@cps/sdk';
import { useMe } from '../api.js';
import { useApi } from '../session.js';
import { ActionButton, Empty, ErrorView, Loading, Time, field } from '../ui.js';

/** The signed-in user: credit, tokens (sessions and API tokens) and client certificates. */
export const AccountPage = (): ReactNode => {
  const me = useMe();
  return (
    <>
      <h1>Account</h1>
      <Loading query={me} what="your account">
        {() =>
          me.data && (
            <dl className="facts">
              <dt>User</dt>
              <dd>{me.data.username}</dd>
              <dt>Role</dt>
              <dd>{me.data.role}</dd>
              <dt>Credit left</dt>
              <dd>{me.data.credit}</dd>
            </dl>
          )
        }
      </Loading>
      <Tokens />
      <Certificates />
    </>
  );
};

const Tokens = () => {
  const api = useApi();
  const queries = useQueryClient();
  const tokens = useQuery({
    queryKey: ['tokens'],
    queryFn: async () => (await unwrap(api.GET('/v1/tokens'))).tokens,
  });
  const [created, setCreated] = useState<string>();
  const [error, setError] = useState<unknown>();
  const create = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setError(undefined);
    try {
      const t = await unwrap(
        api.POST('/v1/tokens', {
          body: { name: field(f, 'name'), scopes: [field(f, 'scope') as 'read' | 'write' | 'admin'] },
        }),
      );
      setCreated(t.token);
      await queries.invalidateQueries({ queryKey: ['tokens'] });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="tokens">
      <h2 id="tokens">Tokens</h2>
      <Loading query={tokens} what="your tokens">
        {() =>
          (tokens.data ?? []).length === 0 ? (
            <Empty>No tokens.</Empty>
          ) : (
            <table aria-label="tokens">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {(tokens.data ?? []).map((t) => (
                  <tr key={t.tokenId}>
                    <td>{t.name}</td>
                    <td>{t.kind}</td>
                    <td>{t.scopes.join(', ')}</td>
                    <td>{t.revoked ? 'revoked' : <Time at={t.expiresAt} />}</td>
                    <td>
                      {!t.revoked && (
                        <ActionButton
                          label="Revoke"
                          kind="danger"
                          confirm={`Revoke ${t.name}? Whatever uses it is signed out.`}
                          action={async () => {
                            await unwrap(
                              api.DELETE('/v1/tokens/{id}', { params: { path: { id: t.tokenId } } }),
                            );
                            await queries.invalidateQueries({ queryKey: ['tokens'] });
                          }}
                        />
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loading>
      <form className="inline" onSubmit={(e) => void create(e)}>
        <label>
          New API token named
          <input name="name" required />
        </label>
        <label>
          Scope
          <select name="scope" defaultValue="write">
            <option value="read">read</option>
            <option value="write">write</option>
          </select>
        </label>
        <button type="submit">Create</button>
      </form>
      {created && (
        <p role="status">
          Your new token (shown once, copy it now): <code className="secret">{created}</code>
        </p>
      )}
      <ErrorView error={error} what="Could not create the token" />
    </section>
  );
};

const Certificates = () => {
  const api = useApi();
  const queries = useQueryClient();
  const certs = useQuery({
    queryKey: ['certificates'],
    queryFn: async () => (await unwrap(api.GET('/v1/certificates'))).certificates,
  });
  const [bundle, setBundle] = useState<string>();
  return (
    <section aria-labelledby="certificates">
      <h2 id="certificates">Client certificates</h2>
      <Loading query={certs} what="your certificates">
        {() =>
          (certs.data ?? []).length === 0 ? (
            <Empty>No client certificates. Create one to sign the CLI or a script in without a token.</Empty>
          ) : (
            <table aria-label="certificates">
              <thead>
                <tr>
                  <th scope="col">Serial</th>
                  <th scope="col">Subject</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {(certs.data ?? []).map((c) => (
                  <tr key={c.serial}>
                    <td>
                      <code>{c.serial}</code>
                    </td>
                    <td>{c.subject}</td>
                    <td>{c.revoked ? 'revoked' : <Time at={c.notAfter} />}</td>
                    <td>
                      {!c.revoked && (
                        <ActionButton
                          label="Revoke"
                          kind="danger"
                          action={async () => {
                            await unwrap(
                              api.DELETE('/v1/certificates/{serial}', {
                                params: { path: { serial: c.serial } },
                              }),
                            );
                            await queries.invalidateQueries({ queryKey: ['certificates'] });
                          }}
                        />
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loading>
      <ActionButton
        label="Create a certificate and key"
        action={async () => {
          const c = await unwrap(api.POST('/v1/certificates', { body: { bundle: true } }));
          setBundle(
            URL.createObjectURL(
              new Blob([c.certificate, c.privateKey ?? '', c.ca], { type: 'application/x-pem-file' }),
            ),
          );
          await queries.invalidateQueries({ queryKey: ['certificates'] });
        }}
      />
      {bundle && (
        <p role="status">
          <a href={bundle} download="cps-client.pem">
            Download the certificate, its key and the platform CA (the key is shown once)
          </a>
        </p>
      )}
    </section>
  );
};
