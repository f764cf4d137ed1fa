import type { Command } from 'commander';
import { followEvents } from '@cps/sdk';
import { cliError, isAbort, waitFor } from '../director-client.js';
import { json, table } from '../output.js';
import { director, examples, type Globals } from './shared.js';

interface EventRow {
  at: string;
  type: string;
  aggregate: string;
  actor: string;
  cursor: string;
}

/** `cps events`, `cps cloud …`, `cps operation`. */
export const observeCommands = (program: Command, g: Globals): void => {
  examples(program.command('events'), [
    'cps events',
    'cps events --app shop --limit 20',
    'cps events --follow --json',
  ])
    .description('the event history you may see (--follow: live, as Server-Sent Events)')
    .option('--app <app>', 'one application')
    .option('--limit <n>', 'events per page', '100')
    .option('--follow', 'keep printing new events')
    .action(async (o: { app?: string; limit: string; follow?: boolean }) => {
      const d = director(g);
      const query = { limit: Number(o.limit), ...(o.app ? { application: o.app } : {}) };
      const page = await d.ask(d.cps.GET('/v1/events', { params: { query: query as never } }));
      const rows = page.events as unknown as EventRow[];
      if (g().json && !o.follow) return json(page);
      for (const e of rows) print(e, g().json === true);
      if (o.follow) await follow(g, rows.at(-1)?.cursor, o.app);
    });

  const cloud = examples(program.command('cloud').description('clouds and what runs on them'), [
    'cps cloud list',
    'cps cloud resources',
  ]);
  examples(cloud.command('list'), ['cps cloud list', 'cps cloud list --json'])
    .description('the clouds nodes can be placed on')
    .action(async () => {
      const d = director(g);
      const r = await d.ask(d.cps.GET('/v1/clouds'));
      if (g().json) return json(r);
      table(r.clouds, ['name', 'kind', 'mode', 'default']);
    });
  examples(cloud.command('resources'), ['cps cloud resources', 'cps --json cloud resources'])
    .description('your nodes, with their node-hours and cost')
    .action(async () => {
      const d = director(g);
      const r = await d.ask(d.cps.GET('/v1/resources'));
      if (g().json) return json(r);
      table(r.resources, ['nodeId', 'kind', 'role', 'cloud', 'status', 'hours', 'cost']);
    });

  examples(program.command('operation <id>'), [
    'cps operation op3f9c2a1b7d4e',
    'cps operation op3f9c2a1b7d4e --wait',
  ])
    .description('a long operation (--wait: until it ends)')
    .option('--wait', 'follow it until it ends')
    .action(async (id: string, o: { wait?: boolean }) => {
      const d = director(g);
      const op = o.wait
        ? await waitFor(d.url, d.cps, id, { quiet: g().json === true })
        : await d.ask(d.cps.GET('/v1/operations/{id}', { params: { path: { id } } }));
      if (g().json) return json(op);
      console.log(`${id}: ${op.state}${op.reason ? ` (${op.reason})` : ''}`);
    });
};

const print = (e: EventRow, asJson: boolean): void => {
  if (asJson) console.log(JSON.stringify(e));
  else console.log(`${e.at}  ${e.type.padEnd(24)} ${e.aggregate}  ${e.actor}`);
};

/** Follows the live event stream after `after`, printing each event, until interrupted (Ctrl-C). */
const follow = async (g: Globals, after: string | undefined, app: string | undefined): Promise<void> => {
  const d = director(g);
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.once('SIGINT', stop);
  try {
    const query = { ...(after ? { after } : {}), ...(app ? { application: app } : {}) };
    const reconnecting = (attempt: number, cause: unknown) =>
      console.error(`(event stream cut: ${(cause as Error).message}; reconnecting, attempt ${attempt})`);
    const stream = followEvents(d.cps, {
      query,
      signal: abort.signal,
      reconnect: true,
      onReconnect: reconnecting,
    });
    for await (const e of stream) print(e, g().json === true);
  } catch (e) {
    if (isAbort(e)) return;
    throw cliError(d.url, e);
  } finally {
    process.off('SIGINT', stop);
  }
};
