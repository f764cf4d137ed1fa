import type { Command } from 'commander';
import { CpsError, isCpsError } from '@cps/core';
import type { components } from '@cps/sdk';
import { archiveBytes, splitLocalArchives, type LocalArchive } from '../local-archives.js';
import { argsSummary, json, readUserFile, table } from '../output.js';
import { director, examples, finish, needApp, roleCounts, type Globals } from './shared.js';

type Director = ReturnType<typeof director>;
type ApplicationItem = components['schemas']['Application'];

/** Uploads a code archive (raw bytes) as the service's code. */
const putArchive = (d: Director, app: string, svc: string, bytes: Uint8Array) =>
  d.ask(
    d.cps.PUT('/v1/applications/{app}/services/{svc}/archive', {
      ...svcPath(app, svc),
      body: bytes as never,
      bodySerializer: (b: unknown) => b as Uint8Array,
      headers: { 'content-type': 'application/octet-stream' },
    }),
  );

/**
 * Uploads the manifest's local archives to their services as soon as the deploy has added them
 * (in manifest order); the deploy waits for them before it starts anything.
 */
const uploadLocal = async (d: Director, appId: string, archives: readonly LocalArchive[], quiet: boolean) => {
  if (archives.length === 0) return;
  const need = Math.max(...archives.map((a) => a.index)) + 1;
  const deadline = Date.now() + 120_000;
  let services: { serviceId: string; name: string }[];
  for (;;) {
    services = (await d.ask(d.cps.GET('/v1/applications/{app}', path(appId)))).services;
    if (services.length >= need) break;
    if (Date.now() > deadline) throw new CpsError('timeout', 'the deploy did not add its services in time');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const a of archives) {
    const s = services[a.index] as { serviceId: string; name: string };
    const r = await putArchive(d, appId, s.serviceId, await archiveBytes(a.file));
    if (!quiet) console.error(`  ${s.name}: uploaded ${a.file} (version ${r.version}, ${r.size} bytes)`);
  }
};

const path = (app: string) => ({ params: { path: { app } } });
const svcPath = (app: string, svc: string) => ({ params: { path: { app, svc } } });

/** `cps app …`, `cps deploy`, `cps service …`. */
export const appCommands = (program: Command, g: Globals): void => {
  const app = examples(program.command('app').description('applications'), [
    'cps app create shop',
    'cps app list',
    'cps app info shop',
  ]);
  examples(
    app
      .command('create <name>')
      .description('create an application')
      .option('--description <text>', 'what it is', '')
      .action(async (name: string, o: { description: string }) => {
        const d = director(g);
        const a = await d.ask(d.cps.POST('/v1/applications', { body: { name, description: o.description } }));
        if (g().json) return json(a);
        console.log(`created ${a.name} (${a.appId})`);
      }),
    ['cps app create shop', 'cps app create shop --description "the shop"'],
  );
  examples(app.command('list'), ['cps app list', 'cps --json app list'])
    .description('your applications')
    .action(async () => {
      const d = director(g);
      // every page, in the director's order (by name)
      const r = { applications: [] as ApplicationItem[] };
      for (let after: string | undefined; ;) {
        const page = await d.ask(
          d.cps.GET('/v1/applications', { params: { query: { limit: 500, ...(after ? { after } : {}) } } }),
        );
        r.applications.push(...page.applications);
        if (!page.nextCursor) break;
        after = page.nextCursor;
      }
      if (g().json) return json(r);
      table(
        r.applications.map((a) => ({
          ...a,
          services: a.services.map((s) => `${s.name}:${s.state}`).join(' '),
        })),
        ['name', 'appId', 'services'],
      );
    });
  examples(app.command('info <app>'), ['cps app info shop', 'cps app info shop --json'])
    .description('an application and its services')
    .action(async (ref: string) => {
      const d = director(g);
      const a = await d.ask(d.cps.GET('/v1/applications/{app}', path(ref)));
      if (g().json) return json(a);
      console.log(`${a.name} (${a.appId})${a.description ? `: ${a.description}` : ''}`);
      table(a.services, ['name', 'serviceId', 'type', 'cloud', 'state']);
    });
  examples(app.command('rename <app> <name>'), ['cps app rename shop store'])
    .description('rename an application')
    .action(async (ref: string, name: string) => {
      const d = director(g);
      const a = await d.ask(d.cps.PATCH('/v1/applications/{app}', { ...path(ref), body: { name } }));
      if (g().json) return json(a);
      console.log(`renamed to ${a.name}`);
    });
  for (const [verb, route, what] of [
    ['start', '/v1/applications/{app}/start', 'start'],
    ['stop', '/v1/applications/{app}/stop', 'stop'],
  ] as const)
    examples(app.command(`${verb} <app>`), [`cps app ${verb} shop`, `cps app ${verb} shop --no-wait`])
      .description(`${verb} every service of an application`)
      .option('--no-wait', 'answer the operation id at once')
      .action(async (ref: string, o: { wait: boolean }) => {
        const d = director(g);
        const r = await d.ask(d.cps.POST(route, path(ref)));
        await finish(g, d.cps, d.url, r, { wait: o.wait, what });
      });
  examples(app.command('delete <app>'), ['cps app delete shop', 'cps app delete shop --no-wait'])
    .description('stop and delete an application')
    .option('--no-wait', 'answer the operation id at once')
    .action(async (ref: string, o: { wait: boolean }) => {
      const d = director(g);
      const r = await d.ask(d.cps.DELETE('/v1/applications/{app}', path(ref)));
      await finish(g, d.cps, d.url, r, { wait: o.wait, what: 'delete' });
    });
  examples(app.command('log <app>'), ['cps app log shop', 'cps app log shop --json'])
    .description("the managers' logs of an application")
    .action(async (ref: string) => {
      const d = director(g);
      const r = await d.ask(d.cps.GET('/v1/applications/{app}/logs', path(ref)));
      if (g().json) return json(r);
      for (const s of r.services) console.log(`== ${s.name} (${s.state})\n${s.text}`);
    });
  examples(app.command('export <app>'), ['cps app export shop > shop.json'])
    .description('the manifest that deploys this application again')
    .action(async (ref: string) => {
      const d = director(g);
      json(await d.ask(d.cps.GET('/v1/applications/{app}/manifest', path(ref))));
    });

  examples(
    program
      .command('deploy <manifest>')
      .description('deploy an application manifest (JSON or YAML, ConPaaS format)')
      .option('--if-missing', 'an application of that name already deployed is fine')
      .option('--no-wait', 'answer the operation id at once')
      .action(async (file: string, o: { ifMissing?: boolean; wait: boolean }) => {
        const d = director(g);
        const text = readUserFile(file).toString('utf8');
        const yaml = /\.ya?ml$/i.test(file);
        let parsed: unknown;
        try {
          parsed = yaml ? (await import('yaml')).parse(text) : (JSON.parse(text) as unknown);
        } catch (e) {
          throw new CpsError(
            'validation',
            `${file} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(e as Error).message}`,
            [{ path: '$', code: yaml ? 'invalid_yaml' : 'invalid_json', message: (e as Error).message }],
          );
        }
        const { manifest, archives } = splitLocalArchives(parsed, file);
        // YAML travels as { yaml } (the route's documented form) unless the CLI had to rewrite it
        const body = yaml && archives.length === 0 ? { yaml: text } : manifest;
        try {
          const r = await d.ask(d.cps.POST('/v1/manifests', { body: body as never }));
          if (!g().json) console.error(`deploying application ${r.appId}`);
          await uploadLocal(d, r.appId, archives, g().json === true);
          await finish(g, d.cps, d.url, r, { wait: o.wait, what: 'deploy' });
          if (o.wait && !g().json) console.log(`deployed: ${d.url}/v1/applications/${r.appId}`);
        } catch (e) {
          if (o.ifMissing && isCpsError(e) && e.code === 'name_taken') {
            console.log('already deployed');
            return;
          }
          throw e;
        }
      }),
    [
      'cps deploy examples/generic-hello.json',
      'cps deploy app.yaml --no-wait',
      'cps deploy examples/generic-scripts/manifest.json',
    ],
  );

  const service = examples(
    program.command('service').description('the services of an application (give --app)'),
    [
      'cps service list --app shop',
      'cps service add generic jobs --app shop',
      'cps service add-nodes jobs --app shop --node 2',
    ],
  );
  examples(service.command('types'), ['cps service types', 'cps service types --json'])
    .description('the service types, their roles and methods')
    .action(async () => {
      const d = director(g);
      const r = await d.ask(d.cps.GET('/v1/service-types'));
      if (g().json) return json(r);
      table(
        r.serviceTypes.map((t) => ({
          ...t,
          roles: t.roles.join(','),
          methods: t.methods.map((m) => m.name).join(','),
        })),
        ['type', 'roles', 'methods', 'description'],
      );
    });
  examples(service.command('list'), ['cps service list --app shop'])
    .requiredOption('--app <app>', 'application')
    .description('the services of an application')
    .action(async (o: { app: string }) => {
      const d = director(g);
      const r = await d.ask(d.cps.GET('/v1/applications/{app}/services', path(o.app)));
      if (g().json) return json(r);
      table(r.services, ['name', 'serviceId', 'type', 'state', 'nodes']);
    });
  examples(
    service
      .command('add <type> <name>')
      .requiredOption('--app <app>', 'application')
      .option('--cloud <cloud>', 'cloud', 'local')
      .option(
        '--link <link=service>',
        'link a service of the application: its endpoints reach this one’s nodes (repeatable)',
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      )
      .description('add a service (it starts in INIT)')
      .action(async (type: string, name: string, o: { app: string; cloud: string; link: string[] }) => {
        const d = director(g);
        const links = Object.fromEntries(
          o.link.map((l) => {
            const i = l.indexOf('=');
            if (i < 1) throw new CpsError('validation', `--link needs link=service, got ${l}`);
            return [l.slice(0, i), l.slice(i + 1)];
          }),
        );
        const s = await d.ask(
          d.cps.POST('/v1/applications/{app}/services', {
            ...path(o.app),
            body: { type, name, cloud: o.cloud, links },
          }),
        );
        if (g().json) return json(s);
        console.log(`added ${s.name} (${s.serviceId})`);
      }),
    [
      'cps service add generic jobs --app shop',
      'cps service add helloworld hello --app shop --cloud local',
      'cps service add generic worker --app shop --link cache=sessions',
    ],
  );
  examples(service.command('info <svc>'), ['cps service info jobs --app shop'])
    .option('--app <app>', 'application')
    .description('a service: its state, its URL (a web service), nodes, code version, endpoints and links')
    .action(async (svc: string, o: { app?: string }) => {
      const d = director(g);
      const s = await d.ask(d.cps.GET('/v1/applications/{app}/services/{svc}', svcPath(needApp(o), svc)));
      if (g().json) return json(s);
      const endpoints = (s.endpoints ?? {}) as Record<string, { address: string; port: number }>;
      const http = endpoints['http'];
      console.log(`${s.name} (${s.serviceId}): ${s.type}, ${s.state}`);
      if (http) console.log(`url: http://${http.address}:${http.port}/`);
      const nodes = Object.entries((s.nodes ?? {}) as Record<string, number>);
      if (nodes.length > 0) console.log(`nodes: ${nodes.map(([r, n]) => `${r} ${n}`).join(', ')}`);
      if (s.archive) console.log(`code: ${s.archive.version} (${s.archive.size} bytes)`);
      for (const [name, e] of Object.entries(endpoints))
        console.log(`endpoint ${name}: ${e.address}:${e.port}`);
      for (const [name, l] of Object.entries((s.links ?? {}) as Record<string, { serviceId: string }>))
        console.log(`link ${name}: ${l.serviceId}`);
    });
  examples(service.command('rename <svc> <name>'), ['cps service rename jobs workers --app shop'])
    .option('--app <app>', 'application')
    .description('rename a service')
    .action(async (svc: string, name: string, o: { app?: string }) => {
      const d = director(g);
      const s = await d.ask(
        d.cps.PATCH('/v1/applications/{app}/services/{svc}', { ...svcPath(needApp(o), svc), body: { name } }),
      );
      if (g().json) return json(s);
      console.log(`renamed to ${s.name}`);
    });
  for (const [verb, what] of [
    ['start', 'start'],
    ['stop', 'stop'],
    ['remove', 'remove'],
  ] as const)
    examples(service.command(`${verb} <svc>`), [
      `cps service ${verb} jobs --app shop`,
      `cps service ${verb} jobs --app shop --no-wait`,
    ])
      .option('--app <app>', 'application')
      .option('--no-wait', 'answer the operation id at once')
      .description(`${verb} a service`)
      .action(async (svc: string, o: { app?: string; wait: boolean }) => {
        const d = director(g);
        const p = svcPath(needApp(o), svc);
        const r = await d.ask(
          verb === 'remove'
            ? d.cps.DELETE('/v1/applications/{app}/services/{svc}', p)
            : d.cps.POST(
                verb === 'start'
                  ? '/v1/applications/{app}/services/{svc}/start'
                  : '/v1/applications/{app}/services/{svc}/stop',
                p,
              ),
        );
        await finish(g, d.cps, d.url, r, { wait: o.wait, what });
      });
  examples(service.command('nodes <svc>'), [
    'cps service nodes jobs --app shop',
    'cps --json service nodes jobs --app shop --all',
  ])
    .option('--app <app>', 'application')
    .option('--all', 'removed nodes too')
    .description('the nodes of a service (removed ones with --all)')
    .action(async (svc: string, o: { app?: string; all?: boolean }) => {
      const d = director(g);
      const r = await d.ask(
        d.cps.GET('/v1/applications/{app}/services/{svc}/nodes', svcPath(needApp(o), svc)),
      );
      const nodes = o.all ? r.nodes : r.nodes.filter((n) => n.state !== 'removed');
      if (g().json) return json({ ...r, nodes });
      table(nodes, ['nodeId', 'role', 'state', 'cloud', 'address', 'lastHeartbeat']);
    });
  examples(
    service
      .command('add-nodes <svc>')
      .option('--app <app>', 'application')
      .option('--cloud <cloud>', 'cloud', 'local')
      .option('--no-wait', 'answer the operation id at once')
      .allowUnknownOption()
      .argument('[roles...]', '--ROLE N pairs')
      .description('add nodes by role: --ROLE N ...')
      .action(
        async (
          svc: string,
          roles: string[],
          o: { app?: string; cloud: string; wait: boolean },
          cmd: Command,
        ) => {
          const d = director(g);
          const nodes = roleCounts(cmd.args.slice(1).length ? cmd.args.slice(1) : roles);
          const r = await d.ask(
            d.cps.POST('/v1/applications/{app}/services/{svc}/nodes', {
              ...svcPath(needApp(o), svc),
              body: { nodes, cloud: o.cloud },
            }),
          );
          await finish(g, d.cps, d.url, r, { wait: o.wait, what: 'add nodes' });
        },
      ),
    [
      'cps service add-nodes jobs --app shop --node 2',
      'cps service add-nodes jobs --app shop --node 1 --no-wait',
    ],
  );
  examples(service.command('remove-nodes <svc> [nodes...]'), [
    'cps service remove-nodes jobs --app shop --node 1',
    'cps service remove-nodes jobs n3f9c2a1b7d4e --app shop',
  ])
    .option('--app <app>', 'application')
    .option('--no-wait', 'answer the operation id at once')
    .allowUnknownOption()
    .description('remove nodes: --ROLE N, or node ids')
    .action(async (svc: string, ids: string[], o: { app?: string; wait: boolean }, cmd: Command) => {
      const d = director(g);
      const rest = cmd.args.slice(1);
      const body = rest.some((a) => a.startsWith('--')) ? { nodes: roleCounts(rest) } : { nodeIds: ids };
      const r = await d.ask(
        d.cps.DELETE('/v1/applications/{app}/services/{svc}/nodes', {
          ...svcPath(needApp(o), svc),
          body: body as never,
        }),
      );
      await finish(g, d.cps, d.url, r, { wait: o.wait, what: 'remove nodes' });
    });
  examples(service.command('log <svc>'), [
    'cps service log jobs --app shop',
    'cps service log jobs --app shop --node n3f9c2a1b7d4e --workload run',
  ])
    .option('--app <app>', 'application')
    .option('--node <node>', "one node's workload output instead of the manager's log")
    .option('--workload <name>', 'one workload of that node')
    .description("a service's logs")
    .action(async (svc: string, o: { app?: string; node?: string; workload?: string }) => {
      const d = director(g);
      const r = await d.ask(
        d.cps.GET('/v1/applications/{app}/services/{svc}/logs', {
          params: {
            path: { app: needApp(o), svc },
            query: {
              ...(o.node ? { node: o.node } : {}),
              ...(o.workload ? { workload: o.workload } : {}),
            } as never,
          },
        }),
      );
      if (g().json) return json(r);
      console.log(r.text);
    });
  examples(service.command('history <svc>'), ['cps service history jobs --app shop'])
    .option('--app <app>', 'application')
    .description('state changes and operations of a service')
    .action(async (svc: string, o: { app?: string }) => {
      const d = director(g);
      const r = await d.ask(
        d.cps.GET('/v1/applications/{app}/services/{svc}/history', svcPath(needApp(o), svc)),
      );
      if (g().json) return json(r);
      table(r.history, ['at', 'from', 'to', 'reason']);
    });
  examples(service.command('methods <svc>'), ['cps service methods jobs --app shop'])
    .option('--app <app>', 'application')
    .description("the methods of a service's type")
    .action(async (svc: string, o: { app?: string }) => {
      const d = director(g);
      const s = await d.ask(d.cps.GET('/v1/applications/{app}/services/{svc}', svcPath(needApp(o), svc)));
      const types = await d.ask(d.cps.GET('/v1/service-types'));
      const t = types.serviceTypes.find((x) => x.type === s.type);
      if (g().json) return json(t?.methods ?? []);
      table(
        (t?.methods ?? []).map((m) => ({ ...m, args: argsSummary(m.args) })),
        ['name', 'args', 'description'],
      );
    });
  examples(
    service
      .command('call <svc> <method>')
      .option('--app <app>', 'application')
      .option('--arg <k=v...>', 'an argument (JSON values are parsed: --arg parameters=["a"])', [])
      .description('call a method of the service type')
      .action(async (svc: string, method: string, o: { app?: string; arg: string[] }) => {
        const d = director(g);
        const args: Record<string, unknown> = {};
        for (const a of o.arg) {
          const i = a.indexOf('=');
          if (i <= 0) throw new CpsError('validation', `--arg needs k=v, got ${a}`);
          const v = a.slice(i + 1);
          try {
            args[a.slice(0, i)] = JSON.parse(v) as unknown;
          } catch {
            args[a.slice(0, i)] = v;
          }
        }
        const r = await d.ask(
          d.cps.POST('/v1/applications/{app}/services/{svc}/calls/{method}', {
            params: { path: { app: needApp(o), svc, method } },
            body: args as never,
          }),
        );
        json(r.result);
      }),
    ['cps service call jobs run --app shop --arg parameters=\'["job-1"]\''],
  );
  examples(service.command('upload <svc> <archive>'), ['cps service upload jobs jobs.tar.gz --app shop'])
    .option('--app <app>', 'application')
    .description('upload a code archive (tar, tar.gz or zip)')
    .action(async (svc: string, file: string, o: { app?: string }) => {
      const d = director(g);
      const r = await putArchive(d, needApp(o), svc, readUserFile(file));
      if (g().json) return json(r);
      console.log(`uploaded version ${r.version} (${r.size} bytes)`);
    });
};
