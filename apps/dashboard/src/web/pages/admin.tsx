import type { ReactNode } from 'react';
import { useState, type FormEvent } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { unwrap } from '@cps/sdk';
import { useApi, useSession } from '../session.js';
import { ActionButton, ErrorView, Loading, Time, field } from '../ui.js';

/** Admins: the users, their credit, and new accounts. */
export const AdminPage = (): ReactNode => {
  const api = useApi();
  const { session } = useSession();
  const queries = useQueryClient();
  const users = useQuery({
    queryKey: ['users'],
    queryFn: async () => (await unwrap(api.GET('/v1/users'))).users,
  });
  const [error, setError] = useState<unknown>();
  const [created, setCreated] = useState<string>();
  if (session?.user.role !== 'admin')
    return (
      <>
        <h1>Users</h1>
        <p>Only admins see the users.</p>
      </>
    );
  const register = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setError(undefined);
    setCreated(undefined);
    try {
      const u = await unwrap(
        api.POST('/v1/users', {
          body: {
            username: field(f, 'username'),
            password: field(f, 'password'),
            role: field(f, 'role') as 'admin' | 'user',
          },
        }),
      );
      setCreated(u.username);
      await queries.invalidateQueries({ queryKey: ['users'] });
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <h1>Users</h1>
      <Loading query={users} what="the users">
        {() => (
          <table aria-label="users">
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col">Credit</th>
                <th scope="col">Since</th>
                <th scope="col">Grant credit</th>
              </tr>
            </thead>
            <tbody>
              {(users.data ?? []).map((u) => (
                <tr key={u.userId}>
                  <td>{u.username}</td>
                  <td>{u.role}</td>
                  <td>{u.credit}</td>
                  <td>
                    <Time at={u.createdAt} />
                  </td>
                  <td>
                    <ActionButton
                      label={`Grant 100 to ${u.username}`}
                      action={async () => {
                        await unwrap(
                          api.POST('/v1/users/{user}/credit', {
                            params: { path: { user: u.username } },
                            body: { amount: 100, reason: 'granted from the dashboard' },
                          }),
                        );
                        await queries.invalidateQueries({ queryKey: ['users'] });
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loading>
      <section aria-labelledby="new-user">
        <h2 id="new-user">New user</h2>
        <form className="inline" onSubmit={(e) => void register(e)}>
          <label>
            User name
            <input name="username" required autoComplete="off" />
          </label>
          <label>
            Password
            <input name="password" type="password" required autoComplete="new-password" />
          </label>
          <label>
            Role
            <select name="role" defaultValue="user">
              <option value="user">user</option>
              <option value="admin">admin</option>
            </select>
          </label>
          <button type="submit">Create the user</button>
        </form>
        <p aria-live="polite">{created ? `Created ${created}.` : ''}</p>
        <ErrorView error={error} what="Could not create the user" />
      </section>
    </>
  );
};
