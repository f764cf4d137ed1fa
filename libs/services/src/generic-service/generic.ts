import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConflictError, CpsError, IdSchema, isErrorCode, serial } from '@cps/core';
import type { AgentContext, ManagerContext } from '../contract/context.js';
import { agentMethod, defineService, managerMethod } from '../contract/service.js';
import { secret } from '../contract/secrets.js';

/**
 * ConPaaS's generic service: the user's archive holds `init.sh`, `notify.sh`, `run.sh`,
 * `interrupt.sh` and `cleanup.sh`; every node gets the list of its peers (`agents.json`, and
 * `MY_ROLE`, `MY_IP`, `MASTER_IP` in the scripts' environment) and the endpoints of the services
 * it links (`LINK_<LINK>_<ENDPOINT>=address:port`) from its configuration. Exactly one `master`.
 */
const SCRIPTS = ['init', 'notify', 'run', 'interrupt', 'cleanup'] as const;
type Script = (typeof SCRIPTS)[number];
/** One code update at a time on this node. */
const oneUpdate = serial();
const EnvName = z.string().regex(/^[A-Z_][A-Z0-9_]{0,63}$/);
const Agents = z.array(z.object({ nodeId: IdSchema, role: z.string(), address: z.string() }));
/** What each node is told (its configuration's settings): the scripts' environment, secrets opened. */
const Settings = z.object({ env: z.record(EnvName, z.string()).default({}) });

/** What this node holds, kept in the plugin's private directory (never read back from `work/`). */
const NodeState = z.object({
  code: z.object({ version: z.string(), entries: z.array(z.string()) }).optional(),
  agents: Agents.default([]),
});
type NodeState = z.infer<typeof NodeState>;

const stateFile = (ctx: AgentContext): string => join(ctx.stateDir, 'generic.json');

const readState = (ctx: AgentContext): NodeState => {
  try {
    return NodeState.parse(JSON.parse(readFileSync(stateFile(ctx), 'utf8')));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return NodeState.parse({});
    throw e;
  }
};

const saveState = (ctx: AgentContext, patch: Partial<NodeState>): void => {
  const next = { ...readState(ctx), ...patch };
  const tmp = `${stateFile(ctx)}.tmp`;
  writeFileSync(tmp, JSON.stringify(next), { mode: 0o600 });
  renameSync(tmp, stateFile(ctx));
};

const envName = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9]/g, '_');

/**
 * `LINK_<LINK>_<ENDPOINT>=address:port` for every endpoint of every linked service, and what each
 * linked service's type gives (a mysql service: `MYSQL_HOST`, `MYSQL_USER`, ...).
 */
const linkEnv = (ctx: AgentContext): Record<string, string> =>
  Object.fromEntries(
    Object.entries(ctx.config?.links ?? {}).flatMap(([link, l]): [string, string][] => [
      ...Object.entries(l.env ?? {}),
      ...Object.entries(l.endpoints).map(([name, e]): [string, string] => [
        `LINK_${envName(link)}_${envName(name)}`,
        `${e.address}:${e.port}`,
      ]),
    ]),
  );

const scriptEnv = (ctx: AgentContext): Record<string, string> => {
  const { agents } = readState(ctx);
  const master = agents.find((a) => a.role === 'master');
  const settings = Settings.safeParse(ctx.config?.settings);
  return {
    ...(settings.success ? settings.data.env : {}),
    ...linkEnv(ctx),
    MY_ROLE: ctx.role,
    MY_IP: ctx.address,
    MY_NODE: ctx.nodeId,
    MASTER_IP: master?.address ?? '',
    // relative to the script's working directory: the node's own directory is closed to workloads
    AGENTS_JSON: 'agents.json',
  };
};

const runScript = async (
  ctx: AgentContext,
  script: Script,
  parameters: readonly string[] = [],
): Promise<boolean> => {
  if (!readState(ctx).code?.entries.includes(`${script}.sh`)) return false;
  await ctx.stopWorkload(script).catch(() => undefined);
  await ctx.startWorkload({
    name: script,
    command: '/bin/sh',
    args: [`code/${script}.sh`, ...parameters],
    env: scriptEnv(ctx),
    restart: 'never',
  });
  return true;
};

const isRunning = (ctx: AgentContext, script: Script): boolean => {
  const w = ctx.workload(script);
  return w?.state === 'running' || w?.state === 'starting';
};

/** Sends the current archive to each node and has it unpacked there (init.sh runs after). */
const deliverCode = async (ctx: ManagerContext, nodeIds: readonly string[]): Promise<number> => {
  const archive = ctx.archive();
  if (!archive) return 0;
  const sent = await Promise.allSettled(
    nodeIds.map(async (n) => {
      await ctx.sendArchive(n);
      // unpacking a large archive on a busy node takes longer than a question
      await ctx.callAgent(n, 'update_code', { version: archive.version }, { timeoutMs: 60_000 });
    }),
  );
  // a node that did not take it (dying, about to be replaced) holds up none of the others
  sent.forEach((r, i) => {
    if (r.status === 'rejected')
      ctx.log.warn('a node did not take the code', { nodeId: nodeIds[i], error: String(r.reason) });
  });
  return sent.filter((r) => r.status === 'fulfilled').length;
};

const running = (ctx: ManagerContext) => ctx.nodes().filter((n) => n.state === 'running');

const onAll = async (
  ctx: ManagerContext,
  command: 'run' | 'interrupt' | 'cleanup',
  parameters: readonly string[],
) => {
  const answers = await ctx.fanOut(
    running(ctx).map((n) => n.nodeId),
    'execute_script',
    { command, parameters },
  );
  // refused everywhere (run.sh still running, say): the caller gets that refusal, not a list of it
  const first = answers[0];
  if (first && !first.ok && answers.every((a) => !a.ok && a.error.code === first.error.code))
    throw new CpsError(
      isErrorCode(first.error.code) ? first.error.code : 'internal',
      `${command}.sh: ${first.error.message}`,
    );
  return {
    nodes: answers.map((a) =>
      a.ok
        ? { nodeId: a.nodeId, started: (a.result as { started: boolean }).started }
        : { nodeId: a.nodeId, started: false, error: a.error.message },
    ),
  };
};

const ScriptResult = z.object({
  nodes: z.array(z.object({ nodeId: z.string(), started: z.boolean(), error: z.string().optional() })),
});
const ScriptArgs = z.object({ parameters: z.array(z.string().max(1000)).max(50).default([]) });

export const genericService = defineService({
  type: 'generic',
  description: 'Any application, driven by init/notify/run/interrupt/cleanup scripts',
  roles: ['master', 'node'],
  defaultRoles: { master: 1 },
  fixedRoles: { master: 1 },
  configSchema: z.object({
    /** Environment of the scripts. */
    env: z.record(EnvName, z.string().max(4096)).default({}),
    /** Environment of the scripts that is secret: sealed in events, redacted everywhere. */
    secrets: z.record(EnvName, secret(z.string().max(4096))).default({}),
  }),
  manifestKeys: z.object({ Archive: z.string().url().optional(), StartRole: z.string().optional() }),
  manager: {
    methods: {
      run: managerMethod({
        description: 'Starts run.sh on every node',
        args: ScriptArgs,
        result: ScriptResult,
        handle: (ctx, a) => onAll(ctx, 'run', a.parameters),
      }),
      interrupt: managerMethod({
        description: 'Starts interrupt.sh on every node (a second interrupt kills run.sh)',
        args: ScriptArgs,
        result: ScriptResult,
        handle: (ctx, a) => onAll(ctx, 'interrupt', a.parameters),
      }),
      cleanup: managerMethod({
        description: 'Starts cleanup.sh on every node',
        args: ScriptArgs,
        result: ScriptResult,
        handle: (ctx, a) => onAll(ctx, 'cleanup', a.parameters),
      }),
      get_script_status: managerMethod({
        description: 'The state of each script on each node (a node that does not answer: unreachable)',
        args: z.object({}),
        result: z.object({ nodes: z.record(z.string(), z.record(z.string(), z.string())) }),
        readOnly: true,
        handle: async (ctx) => {
          const answers = await ctx.fanOut(
            running(ctx).map((n) => n.nodeId),
            'get_script_status',
            {},
          );
          return {
            nodes: Object.fromEntries(
              answers.map((a) => [
                a.nodeId,
                a.ok
                  ? (a.result as { scripts: Record<string, string> }).scripts
                  : Object.fromEntries(SCRIPTS.map((s) => [s, 'unreachable'])),
              ]),
            ),
          };
        },
      }),
    },
    configureNode: (ctx) => {
      const config = ctx.config as { env?: Record<string, string>; secrets?: Record<string, string> };
      return { env: { ...config.env, ...config.secrets } };
    },
    // a node that joined later lacks the code
    onNodesChanged: async (ctx) => {
      const current = ctx.archive()?.version;
      if (current === undefined) return;
      const answers = await ctx.fanOut(
        running(ctx).map((n) => n.nodeId),
        'get_code_version',
        {},
      );
      for (const a of answers)
        if (!a.ok) ctx.log.warn('a node did not say its code version', { nodeId: a.nodeId, error: a.error });
      const lacking = answers.flatMap((a) =>
        a.ok && (a.result as { codeVersion: string }).codeVersion !== current ? [a.nodeId] : [],
      );
      await deliverCode(ctx, lacking);
    },
    onArchiveChanged: async (ctx) => {
      await deliverCode(
        ctx,
        running(ctx).map((n) => n.nodeId),
      );
    },
  },
  agent: {
    // its peers (agents.json), then notify.sh when the code is there
    onConfigure: async (ctx, config) => {
      const agents = config.nodes.map((n) => ({
        nodeId: n.nodeId,
        role: n.role,
        address: n.address ?? ctx.address,
      }));
      saveState(ctx, { agents });
      await ctx.files.write('agents.json', JSON.stringify(agents, null, 2));
      await runScript(ctx, 'notify');
    },
    methods: {
      get_code_version: agentMethod({
        description: 'The code version this node holds',
        args: z.object({}),
        result: z.object({ codeVersion: z.string() }),
        handle: (ctx) => ({ codeVersion: readState(ctx).code?.version ?? '' }),
      }),
      update_code: agentMethod({
        description: 'Replaces the code with an archive the manager sent, then runs init.sh',
        args: z.object({ version: z.string().max(64) }),
        result: z.object({ updated: z.boolean() }),
        // one update at a time; the version already in place is not unpacked again
        handle: (ctx, args) => {
          const update = async () => {
            if (readState(ctx).code?.version === args.version) return { updated: false };
            if (isRunning(ctx, 'run'))
              throw new ConflictError('run.sh is running: interrupt it before replacing the code');
            const { entries } = await ctx.files.unpack(args.version, 'code');
            saveState(ctx, { code: { version: args.version, entries: [...entries] } });
            ctx.log.info('code unpacked', { version: args.version, entries: entries.length });
            await runScript(ctx, 'init');
            return { updated: true };
          };
          return oneUpdate(update);
        },
      }),
      execute_script: agentMethod({
        description: 'Runs run.sh, interrupt.sh or cleanup.sh',
        args: z.object({
          command: z.enum(['run', 'interrupt', 'cleanup']),
          parameters: z.array(z.string().max(1000)).max(50).default([]),
        }),
        result: z.object({ started: z.boolean() }),
        handle: async (ctx, args) => {
          if (args.command === 'interrupt') {
            if (isRunning(ctx, 'interrupt')) {
              await ctx.stopWorkload('run').catch(() => undefined);
              return { started: false };
            }
            return { started: await runScript(ctx, 'interrupt', args.parameters) };
          }
          if (isRunning(ctx, 'run') || isRunning(ctx, 'cleanup'))
            throw new ConflictError(`cannot start ${args.command}.sh while scripts run`);
          return { started: await runScript(ctx, args.command, args.parameters) };
        },
      }),
      get_script_status: agentMethod({
        description: 'The state of each script on this node',
        args: z.object({}),
        result: z.object({ scripts: z.record(z.string(), z.string()) }),
        handle: (ctx) => ({
          scripts: Object.fromEntries(SCRIPTS.map((s) => [s, ctx.workload(s)?.state ?? 'not_started'])),
        }),
      }),
    },
  },
});
