import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CpsError } from '@cps/core';
import { anonymousWithCa, call } from '../director-client.js';
import { contexts, removeToken, resolveContext, saveContext, useContext } from '../config.js';
import { json, readUserFile, table } from '../output.js';
import { director, examples, type Globals } from './shared.js';

const readStdin = (): string => readFileSync(0, 'utf8').trim();

/** `cps login`, `logout`, `whoami`, `user …`, `token …`, `cert …`. */
export const authCommands = (program: Command, g: Globals): void => {
  examples(
    program
      .command('login')
      .description('sign in to a director and keep the session in a context')
      .option('--user <name>', 'user name')
      .option('--password-stdin', 'read the password from standard input')
      .option('--name <context>', 'context name (default: the current one, else "default")')
      .action(async (o: { user?: string; passwordStdin?: boolean; name?: string }) => {
        const { name: current, ctx } = resolveContext(g());
        if (!o.user) throw new CpsError('validation', 'give --user');
        if (!o.passwordStdin)
          throw new CpsError('validation', 'give the password on standard input with --password-stdin');
        const password = readStdin();
        const s = await call(
          ctx.url,
          anonymousWithCa(ctx.url, ctx.ca).POST('/v1/sessions', { body: { username: o.user, password } }),
        );
        const name = o.name ?? (current || 'default');
        saveContext(name, { url: ctx.url, token: s.token, user: o.user, ...(ctx.ca ? { ca: ctx.ca } : {}) });
        console.log(`signed in as ${s.user.username} (context ${name})`);
      }),
    [
      'echo "$PASSWORD" | cps login --url https://127.0.0.1:14443 --ca ca.pem --user alice --password-stdin',
      'cps --context prod login --user alice --password-stdin < alice.password',
    ],
  );
  const context = examples(program.command('context').description('the directors the CLI knows (contexts)'), [
    'cps context list',
    'cps context use prod',
  ]);
  examples(context.command('list'), ['cps context list', 'cps context list --json'])
    .description('every context; * marks the current one')
    .action(() => {
      const c = contexts();
      if (g().json) return json(c);
      table(
        Object.entries(c.contexts).map(([name, x]) => ({
          current: name === c.current ? '*' : '',
          name,
          url: x.url,
          user: x.user,
        })),
        ['current', 'name', 'url', 'user'],
      );
    });
  examples(context.command('use <name>'), ['cps context use prod'])
    .description('make a context the current one')
    .action((name: string) => {
      useContext(name);
      console.log(`using ${name}`);
    });
  examples(program.command('logout'), ['cps logout', 'cps --context prod logout'])
    .description('end the session of the current context')
    .action(async () => {
      const d = director(g);
      await d.ask(d.cps.DELETE('/v1/sessions/current'));
      removeToken(d.context);
      console.log('signed out');
    });
  examples(program.command('whoami'), ['cps whoami', 'cps --context prod whoami --json'])
    .description('the signed-in user')
    .action(async () => {
      const d = director(g);
      const me = await d.ask(d.cps.GET('/v1/me'));
      if (g().json) return json(me);
      console.log(`${me.username} (${me.role}), credit ${me.credit}, at ${d.url}`);
    });

  const user = examples(program.command('user').description('users (admins)'), [
    'cps user list',
    'cps user create bob --credit 100 < bob.password',
    'cps user add-credit bob 50 --reason "monthly grant"',
  ]);
  examples(
    user
      .command('create <name>')
      .description('create a user; the password comes on standard input')
      .option('--admin', 'an admin')
      .option('--credit <n>', 'initial credit', Number)
      .action(async (name: string, o: { admin?: boolean; credit?: number }) => {
        const d = director(g);
        const u = await d.ask(
          d.cps.POST('/v1/users', {
            body: {
              username: name,
              password: readStdin(),
              role: o.admin ? 'admin' : 'user',
              ...(o.credit !== undefined ? { credit: o.credit } : {}),
            },
          }),
        );
        if (g().json) return json(u);
        console.log(`created ${u.username} (${u.userId})`);
      }),
    ['echo "$PASSWORD" | cps user create bob --credit 100', 'cps user create carol --admin < carol.password'],
  );
  examples(user.command('list'), ['cps user list', 'cps user list --json'])
    .description('every user')
    .action(async () => {
      const d = director(g);
      const r = await d.ask(d.cps.GET('/v1/users'));
      if (g().json) return json(r);
      table(r.users, ['username', 'role', 'credit', 'userId', 'createdAt']);
    });
  examples(user.command('credit <name>'), ['cps user credit bob'])
    .description("a user's credit")
    .action(async (name: string) => {
      const d = director(g);
      const u = await d.ask(d.cps.GET('/v1/users/{user}', { params: { path: { user: name } } }));
      if (g().json) return json(u);
      console.log(`${u.username}: ${u.credit}`);
    });
  examples(user.command('add-credit <name> <amount>'), [
    'cps user add-credit bob 50 --reason "monthly grant"',
    'cps user add-credit bob -20 --reason refund',
  ])
    .description('grant (or, negative, withdraw) credit')
    .option('--reason <text>', 'why', '')
    .action(async (name: string, amount: string, o: { reason: string }) => {
      const d = director(g);
      const u = await d.ask(
        d.cps.POST('/v1/users/{user}/credit', {
          params: { path: { user: name } },
          body: { amount: Number(amount), reason: o.reason },
        }),
      );
      if (g().json) return json(u);
      console.log(`${u.username}: ${u.credit}`);
    });

  const token = examples(program.command('token').description('API tokens'), [
    'cps token create ci --scope read write --days 30',
    'cps token list',
  ]);
  examples(token.command('create <name>'), [
    'cps token create ci',
    'cps token create dashboard --scope read --days 365',
    'cps token create deploy --scope read write --days 30 > deploy.token',
  ])
    .description('create an API token (shown once)')
    .option('--scope <scope...>', 'read, write, admin', ['read', 'write'])
    .option('--days <n>', 'validity in days', Number, 90)
    .action(async (name: string, o: { scope: ('read' | 'write' | 'admin')[]; days: number }) => {
      const d = director(g);
      const t = await d.ask(d.cps.POST('/v1/tokens', { body: { name, scopes: o.scope, ttlDays: o.days } }));
      if (g().json) return json(t);
      console.log(t.token);
    });
  examples(token.command('list'), ['cps token list', 'cps token list --json'])
    .description('your tokens')
    .action(async () => {
      const d = director(g);
      const r = await d.ask(d.cps.GET('/v1/tokens'));
      if (g().json) return json(r);
      table(r.tokens, ['tokenId', 'kind', 'name', 'scopes', 'expiresAt', 'revoked']);
    });
  examples(token.command('revoke <id>'), ['cps token revoke t5c1f0e9a2b7d'])
    .description('revoke one of your tokens')
    .action(async (id: string) => {
      const d = director(g);
      await d.ask(d.cps.DELETE('/v1/tokens/{id}', { params: { path: { id } } }));
      console.log(`revoked ${id}`);
    });

  const cert = examples(program.command('cert').description('client certificates'), [
    'cps cert create --csr alice.csr',
    'cps cert list',
  ]);
  examples(cert.command('create'), [
    'cps cert create > alice-cert.json',
    'cps cert create --csr alice.csr --days 30',
    'cps cert create --out alice',
  ])
    .description('a client certificate and key (or give --csr FILE to keep your key)')
    .option('--csr <file>', 'a PEM certificate request')
    .option('--days <n>', 'validity in days', Number, 90)
    .option('--out <prefix>', 'write <prefix>.crt and <prefix>.key (0600) instead of printing JSON')
    .action(async (o: { csr?: string; days: number; out?: string }) => {
      const d = director(g);
      const body = o.csr
        ? { csr: readUserFile(o.csr).toString('utf8'), days: o.days }
        : { bundle: true as const, days: o.days };
      const c = await d.ask(d.cps.POST('/v1/certificates', { body: body as never }));
      if (!o.out) return json(c);
      writeFileSync(`${o.out}.crt`, c.certificate);
      if (c.privateKey) writeFileSync(`${o.out}.key`, c.privateKey, { mode: 0o600 });
      console.log(
        `certificate ${c.serial} in ${o.out}.crt${c.privateKey ? `, its key in ${o.out}.key` : ''}; sign in with --cert and --key`,
      );
    });
  examples(cert.command('list'), ['cps cert list', 'cps cert list --json'])
    .description('your certificates')
    .action(async () => {
      const d = director(g);
      const r = await d.ask(d.cps.GET('/v1/certificates'));
      if (g().json) return json(r);
      table(r.certificates, ['serial', 'subject', 'notAfter', 'revoked']);
    });
  examples(cert.command('revoke <serial>'), ['cps cert revoke 5f0c2d9e8a7b41c3b6d2e1f0a9c8b7d6'])
    .description('revoke one of your certificates')
    .action(async (serial: string) => {
      const d = director(g);
      await d.ask(d.cps.DELETE('/v1/certificates/{serial}', { params: { path: { serial } } }));
      console.log(`revoked ${serial}`);
    });
};
