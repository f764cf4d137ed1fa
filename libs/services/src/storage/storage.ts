import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConflictError, CpsError, IdSchema, NotFoundError, ValidationError } from '@cps/core';
import type { AgentContext, ManagerContext, NodeView } from '../contract/context.js';
import { agentMethod, defineService, managerMethod, pluginState } from '../contract/service.js';
import {
  chunkConfig,
  drained,
  shortOfGoal,
  exportsConfig,
  hddConfig,
  isRestoreFile,
  lastChange,
  masterConfig,
  metaloggerConfig,
  mountArgs,
  parseChunkClasses,
  parseChunkMatrix,
  parseChunkServers,
  parseDirInfo,
  parseDisks,
  parseGoal,
  parseMounts,
  parseQuota,
  PORTS,
} from './moosefs.js';

/**
 * Distributed storage on MooseFS (ADR 13): a `master` node (the metadata server, and a chunk server
 * of its own) and `chunk` nodes (chunk servers). Volumes are top-level directories of the file
 * system, each with its replication goal and an optional quota; services that link this one mount
 * them. The volumes are the plugin's state, so a restarted manager knows them; their content lives on
 * the chunk servers, in the nodes' data directories.
 */

// ---- the plugin's state: the volumes

const VolumeName = IdSchema.describe('a volume name: [a-z0-9][a-z0-9_-]*');
const Replicas = z.number().int().min(1).max(9);
const VolumeCreated = z.object({
  name: VolumeName,
  replicas: Replicas,
  quotaBytes: z.number().int().positive().optional(),
});
const VolumeDeleted = z.object({ name: VolumeName });
const ReplicationSet = z.object({ name: VolumeName, replicas: Replicas });

const MasterRan = z.object({ nodeId: IdSchema });

type Volume = z.infer<typeof VolumeCreated>;
interface StorageState {
  readonly volumes: Readonly<Record<string, Volume>>;
  /** The node whose master ran last: a master on another node starts from a metalogger's copy. */
  readonly master?: string;
}
const state = pluginState<StorageState>({
  initial: { volumes: {} },
  events: {
    volume_created: VolumeCreated,
    volume_deleted: VolumeDeleted,
    replication_set: ReplicationSet,
    master_ran: MasterRan,
  },
  evolve: (s, e) => {
    if (e.name === 'master_ran') return { ...s, master: (e.data as { nodeId: string }).nodeId };
    if (e.name === 'volume_created') {
      const v = e.data as Volume;
      return { ...s, volumes: { ...s.volumes, [v.name]: v } };
    }
    if (e.name === 'volume_deleted') {
      const gone = (e.data as { name: string }).name;
      const rest = Object.fromEntries(Object.entries(s.volumes).filter(([n]) => n !== gone));
      return { ...s, volumes: rest };
    }
    if (e.name === 'replication_set') {
      const r = e.data as z.infer<typeof ReplicationSet>;
      const v = s.volumes[r.name];
      return v ? { ...s, volumes: { ...s.volumes, [r.name]: { ...v, replicas: r.replicas } } } : s;
    }
    return s;
  },
});

/** What each node is told. */
const NodeSettings = z.object({
  master: z
    .object({ address: z.string(), metaloggers: z.number(), chunkservers: z.number(), clients: z.number() })
    .optional(),
  /** A master node that starts from a metalogger's copy (the manager sends it), not empty. */
  restore: z.boolean().optional(),
  /** What a client of a volume gives the master. */
  password: z.string(),
});
type NodeSettings = z.infer<typeof NodeSettings>;

const CLIENTS = 'mfs-clients';

// ---- manager side

const volumesOf = (ctx: ManagerContext): Readonly<Record<string, Volume>> =>
  (ctx.state() as StorageState).volumes;
const running = (ctx: ManagerContext): NodeView[] => ctx.nodes().filter((n) => n.state === 'running');

const masterOf = (ctx: ManagerContext): NodeView | undefined =>
  ctx.nodes().find((n) => n.role === 'master' && n.state !== 'removed' && n.state !== 'failed');

const runningMaster = (ctx: ManagerContext): NodeView => {
  const m = masterOf(ctx);
  if (m?.state !== 'running') throw new CpsError('unavailable', 'the storage master is not running');
  return m;
};

const masterAt = (m: NodeView) => {
  if (!m.address || !m.ports) throw new CpsError('internal', 'the master has no address yet');
  return {
    address: m.address,
    metaloggers: m.ports.from + PORTS.metaloggers,
    chunkservers: m.ports.from + PORTS.chunkservers,
    clients: m.ports.from + PORTS.clients,
  };
};

/** A replica count this service can hold: at most one copy per chunk server (every node runs one). */
const checkReplicas = (ctx: ManagerContext, replicas: number): void => {
  const servers = running(ctx).length;
  if (replicas > servers)
    throw new ValidationError(
      `${replicas} replicas need ${replicas} storage nodes; this service runs ${servers}`,
      [
        {
          path: '$.replicas',
          code: 'too_many_replicas',
          message: `at most ${servers}, one per running storage node (add nodes first)`,
        },
      ],
    );
};

const volumeOf = (ctx: ManagerContext, name: string): Volume => {
  const v = volumesOf(ctx)[name];
  if (!v) throw new NotFoundError(`no volume ${name}`);
  return v;
};

const onMaster = (ctx: ManagerContext, method: string, args: unknown): Promise<unknown> =>
  ctx.callAgent(runningMaster(ctx).nodeId, method, args, { timeoutMs: 60_000 });

/** The volumes the manifest asks for (`Volumes`, or ConPaaS's `VolumeStartup`) that do not exist yet. */
const manifestVolumes = (ctx: ManagerContext): Volume[] => {
  const m = ctx.manifest as z.infer<typeof ManifestKeys>;
  const wanted: Volume[] = [
    ...(m.Volumes ?? []).map((v) => ({
      name: v.Name,
      replicas: v.Replicas,
      ...(v.Quota ? { quotaBytes: v.Quota } : {}),
    })),
    ...(m.VolumeStartup ? [{ name: m.VolumeStartup.volumeName, replicas: 1 }] : []),
  ];
  return wanted.filter((v) => !volumesOf(ctx)[v.name]);
};

const createVolume = async (ctx: ManagerContext, v: Volume): Promise<void> => {
  await onMaster(ctx, 'make_volume', v);
  await ctx.record('volume_created', v);
};

/** Once the master runs: its endpoint published, and the manifest's volumes made. */
const onNodesChanged = async (ctx: ManagerContext): Promise<void> => {
  const m = masterOf(ctx);
  if (m?.state !== 'running' || !m.address) return;
  const at = masterAt(m);
  await ctx.setEndpoint('mfs', { address: at.address, port: at.clients, nodeId: m.nodeId });
  if ((ctx.state() as StorageState).master !== m.nodeId) await ctx.record('master_ran', { nodeId: m.nodeId });
  // the manifest's volumes once every node asked for runs: their replicas count the chunk servers
  if (ctx.nodes().some((n) => n.state === 'requested' || n.state === 'starting')) return;
  const servers = running(ctx).length;
  for (const v of manifestVolumes(ctx))
    await createVolume(ctx, { ...v, replicas: Math.min(v.replicas, servers) }).catch((e: unknown) =>
      ctx.log.warn('a volume of the manifest was not made', { volume: v.name, error: String(e) }),
    );
};

/** A master node other than the one that ran last: the file system's metadata is elsewhere. */
const needsRestore = (ctx: ManagerContext, node: NodeView): boolean => {
  const last = (ctx.state() as StorageState).master;
  return last !== undefined && last !== node.nodeId;
};

const Metalog = z.object({
  lastChange: z.number(),
  files: z.array(z.object({ name: z.string(), size: z.number() })),
});
/** Bytes of a metalogger's file per request. */
const PART = 256 * 1024;

/**
 * A new master (its node replaced the lost one): the freshest metalogger's copy of the metadata and
 * change logs (the chunk node whose change log goes furthest) is sent to it, part by part through
 * the manager, and it starts from there (`mfsmaster -a`). With no copy anywhere it starts empty, and
 * says so.
 */
const restoreMaster = async (ctx: ManagerContext, node: NodeView): Promise<void> => {
  const copies = await ctx.fanOut(
    running(ctx)
      .filter((n) => n.role === 'chunk')
      .map((n) => n.nodeId),
    'metalog',
    {},
    { timeoutMs: 10_000 },
  );
  const best = copies
    .flatMap((c) => (c.ok ? [{ nodeId: c.nodeId, log: Metalog.parse(c.result) }] : []))
    .filter((c) => c.log.files.length > 0)
    .sort((a, b) => b.log.lastChange - a.log.lastChange)[0];
  if (!best) ctx.log.error('no metalogger has a copy of the metadata: the new master starts empty', {});
  for (const f of best?.log.files ?? [])
    // at least one part: an empty file is made too
    for (let offset = 0; offset < f.size || offset === 0; offset += PART) {
      const part = z
        .object({ data: z.string() })
        .parse(await ctx.callAgent(best!.nodeId, 'metalog_read', { name: f.name, offset, length: PART }));
      await ctx.callAgent(
        node.nodeId,
        'restore_part',
        { name: f.name, offset, data: part.data },
        { timeoutMs: 30_000 },
      );
    }
  await ctx.callAgent(node.nodeId, 'restore_master', {}, { timeoutMs: 30_000 });
  ctx.log.info('master restored from a metalogger', {
    nodeId: node.nodeId,
    ...(best ? { from: best.nodeId, lastChange: best.log.lastChange } : {}),
  });
};

/** How long a drain may take before the node is removed all the same (logged). */
const DRAIN_MS = 60 * 60_000;

/**
 * A chunk server leaving: its disk is marked for removal and the node is removed only once the
 * master holds every chunk of it elsewhere. A node that does not answer (dead, being replaced) has
 * nothing left to move.
 */
const drainNode = async (ctx: ManagerContext, node: NodeView, stopping: AbortSignal): Promise<void> => {
  if (node.role === 'master' || !node.address || !node.ports) return;
  try {
    await ctx.callAgent(node.nodeId, 'drain', {}, { timeoutMs: 10_000 });
  } catch (e) {
    ctx.log.info('not drained: the node does not answer', { nodeId: node.nodeId, error: String(e) });
    return;
  }
  const server = `${node.address}:${node.ports.from + PORTS.chunkserver}`;
  const started = Date.now();
  ctx.log.info('draining', { nodeId: node.nodeId, server });
  while (Date.now() - started < DRAIN_MS) {
    if (stopping.aborted)
      throw new CpsError('unavailable', 'the manager stopped: the drain goes on at its restart');
    const status = await onMaster(ctx, 'drain_status', {}).then(
      (d) => DrainStatus.parse(d),
      () => undefined,
    );
    if (status && drained(status, server)) {
      ctx.log.info('drained', { nodeId: node.nodeId, ms: Date.now() - started });
      return;
    }
    await new Promise((r) => setTimeout(r, 2_000));
  }
  ctx.log.warn('drain not finished in time: the node is removed all the same', { nodeId: node.nodeId });
};

const VolumeView = z.object({
  name: z.string(),
  replicas: z.number(),
  quotaBytes: z.number().optional(),
  files: z.number(),
  usedBytes: z.number(),
  storedBytes: z.number(),
  health: z.enum(['healthy', 'degraded']),
  mounts: z.number(),
});
const VolumeFigures = z.object({
  name: z.string(),
  goal: z.number().optional(),
  quotaBytes: z.number().optional(),
  files: z.number(),
  length: z.number(),
  size: z.number(),
});
const ServerRow = z.object({
  address: z.string(),
  port: z.number(),
  chunks: z.number(),
  usedBytes: z.number(),
  totalBytes: z.number(),
});
const Health = z.object({
  servers: z.array(ServerRow),
  chunks: z.record(z.string(), z.number()),
  mounts: z.array(z.object({ address: z.string(), path: z.string() })),
});
const Cell = z.object({ goal: z.number(), copies: z.number(), chunks: z.number() });
/** What `drained` reads: see it in `moosefs.ts`. */
const DrainStatus = z.object({
  servers: z.array(ServerRow),
  disks: z.array(z.object({ server: z.string(), path: z.string(), chunks: z.number(), status: z.string() })),
  /** How many chunks of each goal have so many copies: every copy, and regular ones only (not on disks marked for removal). */
  matrix: z.array(Cell),
  regularMatrix: z.array(Cell),
});

/** What the master says of its chunk servers, chunks and mounts (see the agent's `health`). */
const masterHealth = async (ctx: ManagerContext): Promise<z.infer<typeof Health>> =>
  Health.parse(await onMaster(ctx, 'health', {}));

const ManifestKeys = z.object({
  /** The volumes made once the service runs. */
  Volumes: z
    .array(
      z.strictObject({
        Name: VolumeName,
        Replicas: Replicas.default(2),
        /** Bytes the volume's files may hold in all. */
        Quota: z.number().int().positive().optional(),
      }),
    )
    .max(100)
    .optional(),
  /** ConPaaS's xtreemfs entry: one volume (its owner is the application's user). */
  VolumeStartup: z.object({ volumeName: VolumeName, owner: z.string().max(128).optional() }).optional(),
});

// ---- agent side

const settingsOf = (ctx: AgentContext): NodeSettings | undefined => {
  const s = NodeSettings.safeParse(ctx.config?.settings);
  return s.success ? s.data : undefined;
};

/** Runs one of MooseFS's tools as the agent (root: they work on the administration mount). */
const tool = (command: string, args: readonly string[], timeoutMs = 60_000): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new CpsError(
              'unavailable',
              `${command} ${args.join(' ')}: ${(stderr || err.message).trim().slice(0, 400)}`,
            ),
          );
        else resolve(stdout);
      },
    );
  });

/** The whole file system, mounted where no workload reaches (the plugin's own directory). */
const adminMount = (ctx: AgentContext): string => join(ctx.stateDir, 'admin');

const isMounted = (dir: string): boolean =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir);

const admin = async (ctx: AgentContext): Promise<string> => {
  const dir = adminMount(ctx);
  if (isMounted(dir)) return dir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await tool(
    'mfsmount',
    mountArgs({ dir, master: { address: ctx.address, port: ctx.ports.from + PORTS.clients } }),
  );
  return dir;
};

const volumeDir = async (ctx: AgentContext, name: string): Promise<string> =>
  join(await admin(ctx), VolumeName.parse(name));

const exists = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/** `mfscli` on this node's master: one data set (`-SCS`, ...), in one of its modes. */
const masterTool = (ctx: AgentContext, set: string, mode?: string): Promise<string> =>
  tool('mfscli', [
    '-H',
    ctx.address,
    '-P',
    String(ctx.ports.from + PORTS.clients),
    set,
    ...(mode ? ['-m', mode] : []),
    '-p',
    '-n',
    '-s',
    '|',
  ]);

/** Paths of the node's MooseFS files: configuration in the work directory, data in the data directory. */
const paths = (ctx: AgentContext) => ({
  masterData: join(ctx.workDir, ctx.dataDir, 'master'),
  chunkData: join(ctx.workDir, ctx.dataDir, 'chunks'),
  masterCfg: join(ctx.workDir, 'mfsmaster.cfg'),
  exportsCfg: join(ctx.workDir, 'mfsexports.cfg'),
  chunkCfg: join(ctx.workDir, 'mfschunkserver.cfg'),
  metaloggerData: join(ctx.workDir, ctx.dataDir, 'metalogger'),
  metaloggerCfg: join(ctx.workDir, 'mfsmetalogger.cfg'),
  hddCfg: join(ctx.workDir, 'mfshdd.cfg'),
});

const writeConfigs = async (ctx: AgentContext, s: NodeSettings): Promise<void> => {
  const p = paths(ctx);
  if (ctx.role === 'master') {
    await ctx.files.write(
      'mfsmaster.cfg',
      masterConfig({
        dataPath: p.masterData,
        exportsPath: p.exportsCfg,
        address: ctx.address,
        firstPort: ctx.ports.from,
      }),
    );
    await ctx.files.write(
      'mfsexports.cfg',
      exportsConfig({ masterAddress: ctx.address, password: s.password }),
    );
  }
  if (s.master) {
    await ctx.files.write(
      'mfschunkserver.cfg',
      chunkConfig({
        dataPath: p.chunkData,
        hddConfPath: p.hddCfg,
        address: ctx.address,
        firstPort: ctx.ports.from,
        master: { address: s.master.address, port: s.master.chunkservers },
      }),
    );
    await ctx.files.write('mfshdd.cfg', hddConfig(join(p.chunkData, 'hdd'), existsSync(drainMarker(ctx))));
    if (ctx.role === 'chunk')
      await ctx.files.write(
        'mfsmetalogger.cfg',
        metaloggerConfig({
          dataPath: p.metaloggerData,
          master: { address: s.master.address, port: s.master.metaloggers },
        }),
      );
  }
};

/** Present once the node was told to drain: its disk stays marked for removal across configurations. */
const drainMarker = (ctx: AgentContext): string => join(ctx.stateDir, 'draining');

/** Where this node's chunk server last pointed: a new master address means a restart of it. */
const chunkMaster = new Map<string, string>();

const startChunkServer = async (ctx: AgentContext, s: NodeSettings): Promise<void> => {
  if (!s.master) return;
  await ctx.startWorkload({
    name: 'mfschunkserver',
    command: '/usr/sbin/mfschunkserver',
    args: ['-f', '-c', paths(ctx).chunkCfg],
    restart: 'always',
    // ready once the master counts it among its chunk servers (listening is not enough: a volume
    // written before would get fewer copies than its goal, made up only later)
    ready: {
      command: '/bin/sh',
      args: [
        '-c',
        `/usr/bin/mfscli -H "$1" -P "$2" -SCS -p -n -s '|' | grep -qF "|$3|$4|"`,
        'sh',
        s.master.address,
        String(s.master.clients),
        ctx.address,
        String(ctx.ports.from + PORTS.chunkserver),
      ],
    },
  });
  if (ctx.role === 'chunk')
    await ctx.startWorkload({
      name: 'mfsmetalogger',
      command: '/usr/sbin/mfsmetalogger',
      args: ['-f', '-c', paths(ctx).metaloggerCfg],
      restart: 'always',
    });
  chunkMaster.set(ctx.nodeId, `${s.master.address}:${s.master.chunkservers}`);
};

/**
 * Runs `script` as the workload user on the node's data directory (`$1`; `args` are `$2`...): the
 * daemons' files are the workload's, so the agent never touches them itself. Fails with `what` and
 * the script's stderr; resolves to its stdout.
 */
const inData = async (
  ctx: AgentContext,
  what: string,
  script: string,
  args: readonly string[] = [],
  options: { readonly input?: string; readonly keepBytes?: number } = {},
): Promise<string> => {
  const r = await ctx.exec('/bin/sh', ['-c', script, 'sh', ctx.dataDir, ...args], options);
  if (r.code !== 0) throw new CpsError('internal', `${what}: ${r.stderr.trim()}`);
  return r.stdout;
};

/** A new file system: MooseFS's empty metadata file. */
const emptyMetadata = (ctx: AgentContext): Promise<string> =>
  inData(ctx, 'empty metadata', 'cp /var/lib/mfs/metadata.mfs.empty "$1/master/metadata.mfs"');

const startMaster = (ctx: AgentContext): Promise<void> =>
  ctx.startWorkload({
    name: 'mfsmaster',
    command: '/usr/sbin/mfsmaster',
    // -a: the metadata rebuilt from the change logs (after a crash, or from a metalogger's copy)
    args: ['-f', '-a', '-c', paths(ctx).masterCfg],
    restart: 'always',
    ready: { tcp: ctx.ports.from + PORTS.clients },
  });

/** Whether the master's data directory holds metadata (its own, or a metalogger's copy). */
const hasMetadata = async (ctx: AgentContext): Promise<boolean> =>
  (
    await ctx.exec('/bin/sh', [
      '-c',
      'cd "$1/master" && for f in metadata.mfs metadata.mfs.back metadata_ml.mfs.back; do [ -e "$f" ] && exit 0; done; exit 1',
      'sh',
      ctx.dataDir,
    ])
  ).code === 0;

const onStart = async (ctx: AgentContext): Promise<void> => {
  const s = settingsOf(ctx);
  if (!s) return;
  // as the workload user, in its own directory: the daemons' data
  await inData(ctx, 'preparing the data directory', 'mkdir -p "$1/master" "$1/chunks/hdd" "$1/metalogger"');
  if (ctx.role === 'master') {
    // a replacement master waits for the metalogger's copy (the manager's restore_master starts it)
    if (await hasMetadata(ctx)) await startMaster(ctx);
    else if (!s.restore) {
      await emptyMetadata(ctx);
      await startMaster(ctx);
    }
  }
  await startChunkServer(ctx, s);
};

const onConfigure = async (ctx: AgentContext): Promise<void> => {
  const s = settingsOf(ctx);
  if (!s) return;
  await writeConfigs(ctx, s);
  const was = chunkMaster.get(ctx.nodeId);
  if (was !== undefined && s.master && was !== `${s.master.address}:${s.master.chunkservers}`) {
    await ctx.stopWorkload('mfschunkserver');
    if (ctx.role === 'chunk') await ctx.stopWorkload('mfsmetalogger');
    await startChunkServer(ctx, s);
  }
};

export const storageService = defineService({
  type: 'storage',
  description:
    'Distributed storage on MooseFS: replicated volumes that the nodes of linked services mount (host mode)',
  roles: ['master', 'chunk'],
  defaultRoles: { master: 1, chunk: 2 },
  fixedRoles: { master: 1 },
  configSchema: z.object({}),
  manifestKeys: ManifestKeys,
  packages: ['moosefs-master', 'moosefs-chunkserver', 'moosefs-client', 'moosefs-cli'],
  checkNode: (node) => {
    if (!node.privileged)
      return 'storage nodes mount their file system (FUSE): the agent must run as root (host mode)';
    if (node.address.startsWith('127.'))
      return 'MooseFS does not run on a loopback address: storage needs host mode (cps up as root), where each node has its own address';
    return undefined;
  },
  state,
  links: {
    credentials: (ctx) => Promise.resolve({ PASSWORD: ctx.secret(CLIENTS) }),
    env: (link) => {
      const mfs = link.endpoints['mfs'];
      const env: Record<string, string> = {};
      if (mfs) Object.assign(env, { MFS_MASTER: mfs.address, MFS_PORT: String(mfs.port) });
      return env;
    },
  },
  volumes: {
    declared: (manifest) => {
      const m = ManifestKeys.safeParse(manifest);
      if (!m.success) return [];
      return [
        ...(m.data.Volumes ?? []).map((v) => v.Name),
        ...(m.data.VolumeStartup ? [m.data.VolumeStartup.volumeName] : []),
      ];
    },
    mountCommand: ({ link, volume, dir }) => {
      const mfs = link.endpoints['mfs'];
      if (!mfs) throw new CpsError('unavailable', `storage ${link.serviceId} has no master running yet`);
      return {
        command: '/usr/bin/mfsmount',
        args: mountArgs({
          dir,
          master: mfs,
          volume,
          ...(link.credentials?.['PASSWORD'] ? { password: link.credentials['PASSWORD'] } : {}),
        }),
      };
    },
  },
  manager: {
    methods: {
      create_volume: managerMethod({
        description: 'Makes a volume: a directory of the file system with its replica count (and quota)',
        args: z.object({
          name: VolumeName,
          replicas: Replicas.default(2),
          quotaBytes: z.number().int().positive().optional(),
        }),
        result: VolumeCreated,
        handle: async (ctx, a) => {
          if (volumesOf(ctx)[a.name]) throw new ConflictError(`volume ${a.name} exists`);
          checkReplicas(ctx, a.replicas);
          const v = {
            name: a.name,
            replicas: a.replicas,
            ...(a.quotaBytes ? { quotaBytes: a.quotaBytes } : {}),
          };
          await createVolume(ctx, v);
          return v;
        },
      }),
      delete_volume: managerMethod({
        description: 'Deletes a volume and its files; refused while a node mounts it, unless forced',
        args: z.object({ name: VolumeName, force: z.boolean().default(false) }),
        result: z.object({ deleted: z.string() }),
        handle: async (ctx, a) => {
          volumeOf(ctx, a.name);
          const health = await masterHealth(ctx);
          const mounts = health.mounts.filter((m) => m.path === `/${a.name}`);
          if (mounts.length > 0 && !a.force)
            throw new CpsError(
              'conflict',
              `volume ${a.name} is mounted by ${mounts.map((m) => m.address).join(', ')}: unmount it first, or force`,
              [
                {
                  path: '$.name',
                  code: 'volume_mounted',
                  message: 'mounted: stop the services that mount it, or force',
                },
              ],
            );
          await onMaster(ctx, 'remove_volume', { name: a.name });
          await ctx.record('volume_deleted', { name: a.name });
          return { deleted: a.name };
        },
      }),
      set_replication: managerMethod({
        description:
          'Changes how many copies of each of the volume’s chunks are kept (copied in the background)',
        args: z.object({ name: VolumeName, replicas: Replicas }),
        result: ReplicationSet,
        handle: async (ctx, a) => {
          volumeOf(ctx, a.name);
          checkReplicas(ctx, a.replicas);
          await onMaster(ctx, 'set_goal', { name: a.name, goal: a.replicas });
          await ctx.record('replication_set', a);
          return a;
        },
      }),
      list_volumes: managerMethod({
        description: 'The volumes: replicas, quota, files, bytes used and stored, mounts, health',
        readOnly: true,
        args: z.object({}),
        result: z.object({ volumes: z.array(VolumeView) }),
        handle: async (ctx) => {
          const names = Object.keys(volumesOf(ctx));
          const figures = z.array(VolumeFigures).parse(await onMaster(ctx, 'volumes', { names }));
          const health = await masterHealth(ctx);
          // MooseFS counts chunks short of their goal for the whole file system, not per directory
          const short = shortOfGoal(health.chunks);
          return {
            volumes: figures.map((f) => {
              const v = volumesOf(ctx)[f.name]!;
              const degraded = v.replicas > health.servers.length || (short > 0 && f.size > 0);
              return {
                name: f.name,
                replicas: f.goal ?? v.replicas,
                ...(f.quotaBytes !== undefined ? { quotaBytes: f.quotaBytes } : {}),
                files: f.files,
                usedBytes: f.length,
                storedBytes: f.size,
                health: degraded ? ('degraded' as const) : ('healthy' as const),
                mounts: health.mounts.filter((m) => m.path === `/${f.name}`).length,
              };
            }),
          };
        },
      }),
      get_storage_health: managerMethod({
        description:
          'The chunk servers the master has, each storage node’s state, and chunks short of their goal',
        readOnly: true,
        args: z.object({}),
        result: z.object({
          health: z.enum(['healthy', 'degraded']),
          nodes: z.array(
            z.object({ nodeId: z.string(), role: z.string(), state: z.string(), serving: z.boolean() }),
          ),
          chunks: z.record(z.string(), z.number()),
        }),
        handle: async (ctx) => {
          const health = await masterHealth(ctx);
          const nodes = ctx
            .nodes()
            .filter((n) => n.state !== 'removed')
            .map((n) => ({
              nodeId: n.nodeId,
              role: n.role,
              state: n.state,
              serving: health.servers.some((s) => s.address === n.address),
            }));
          const short = shortOfGoal(health.chunks);
          return {
            health:
              short === 0 && nodes.every((n) => n.serving) ? ('healthy' as const) : ('degraded' as const),
            nodes,
            chunks: health.chunks,
          };
        },
      }),
    },
    configureNode: (ctx, node): NodeSettings => {
      const m = masterOf(ctx);
      return {
        ...(m?.address && m.ports ? { master: masterAt(m) } : {}),
        ...(node.role === 'master' && needsRestore(ctx, node) ? { restore: true } : {}),
        password: ctx.secret(CLIENTS),
      };
    },
    onNodeJoined: async (ctx, node) => {
      if (node.role === 'master' && needsRestore(ctx, node)) await restoreMaster(ctx, node);
    },
    onNodesChanged,
    beforeRemove: drainNode,
    checkRemove: (ctx, remaining) => {
      const most = Math.max(0, ...Object.values(volumesOf(ctx)).map((v) => v.replicas));
      if (remaining.length < most)
        throw new ValidationError(`a volume keeps ${most} replicas: ${most} storage nodes must stay`, [
          {
            path: '$.nodeIds',
            code: 'too_few_nodes',
            message: `${remaining.length} would be left; lower the volumes' replication first (set_replication)`,
          },
        ]);
    },
  },
  agent: {
    methods: {
      make_volume: agentMethod({
        description: 'Makes the volume’s directory, owned by the workload user, with its goal and quota',
        args: VolumeCreated,
        result: z.object({ made: z.boolean() }),
        handle: async (ctx, a) => {
          const dir = await volumeDir(ctx, a.name);
          const made = !exists(dir);
          if (made) mkdirSync(dir, { mode: 0o755 });
          // the mounting nodes' workloads run as the same account as this node's
          const owner = statSync(ctx.workDir);
          await tool('chown', [`${owner.uid}:${owner.gid}`, dir]);
          await tool('mfssetgoal', ['-r', String(a.replicas), dir]);
          // no trash (MooseFS keeps a deleted file a day by default): a file deleted, or the volume,
          // frees its space at once, and leaves no chunk behind to hold a drain back
          await tool('mfssettrashtime', ['-r', '0', dir]);
          if (a.quotaBytes) await tool('mfssetquota', ['-L', String(a.quotaBytes), dir]);
          return { made };
        },
      }),
      drain: agentMethod({
        description: 'Marks this chunk server’s disk for removal: the master copies its chunks to the others',
        args: z.object({}),
        result: z.object({ draining: z.boolean() }),
        handle: async (ctx) => {
          mkdirSync(ctx.stateDir, { recursive: true, mode: 0o700 });
          writeFileSync(drainMarker(ctx), new Date().toISOString());
          await ctx.files.write('mfshdd.cfg', hddConfig(join(paths(ctx).chunkData, 'hdd'), true));
          // the chunk server reads its disks again on SIGHUP
          await ctx.signal('mfschunkserver', 'SIGHUP');
          return { draining: true };
        },
      }),
      metalog: agentMethod({
        description: 'This node’s metalogger copy: its files and the last change it holds',
        args: z.object({}),
        result: Metalog,
        handle: async (ctx) => {
          const out = await inData(
            ctx,
            'reading the metalogger',
            'cd "$1/metalogger" 2>/dev/null || exit 0; for f in *; do [ -f "$f" ] && echo "file $(stat -c %s "$f") $f"; done; echo "last $(tail -n 1 changelog_ml.0.mfs 2>/dev/null)"',
          );
          const files = out.split('\n').flatMap((l) => {
            const m = /^file (\d+) (.+)$/.exec(l);
            return m && isRestoreFile(m[2]!) ? [{ name: m[2]!, size: Number(m[1]) }] : [];
          });
          return { lastChange: lastChange(/^last (.*)$/m.exec(out)?.[1] ?? ''), files };
        },
      }),
      metalog_read: agentMethod({
        description: 'A part of one of this node’s metalogger files, in base64',
        args: z.object({
          name: z.string().refine(isRestoreFile, 'a metalogger file'),
          offset: z.number().int().min(0),
          length: z.number().int().min(1).max(PART),
        }),
        result: z.object({ data: z.string() }),
        handle: async (ctx, a) => {
          const data = await inData(
            ctx,
            `reading ${a.name}`,
            'tail -c +"$3" "$1/metalogger/$2" | head -c "$4" | base64 -w 0',
            [a.name, String(a.offset + 1), String(a.length)],
            { keepBytes: 2 * PART },
          );
          return { data: data.trim() };
        },
      }),
      restore_part: agentMethod({
        description: 'Writes a part of a metalogger file into this master’s data directory',
        args: z.object({
          name: z.string().refine(isRestoreFile, 'a metalogger file'),
          offset: z.number().int().min(0),
          data: z.string().max(PART * 2),
        }),
        result: z.object({ written: z.number() }),
        handle: async (ctx, a) => {
          if (ctx.role !== 'master') throw new ConflictError('not a master node');
          // the first part makes the file anew: a restore that starts again starts from nothing
          await inData(
            ctx,
            `writing ${a.name}`,
            'mkdir -p "$1/restore" && f="$1/restore/$2" && { [ "$3" != 0 ] || : > "$f"; } && base64 -d >> "$f"',
            [a.name, String(a.offset)],
            { input: a.data },
          );
          return { written: Buffer.from(a.data, 'base64').length };
        },
      }),
      restore_master: agentMethod({
        description: 'Starts this master from the metalogger’s copy it was sent (empty if none came)',
        args: z.object({}),
        result: z.object({ started: z.boolean() }),
        handle: async (ctx) => {
          if (ctx.role !== 'master') throw new ConflictError('not a master node');
          // the parts were written aside: a restore cut short never leaves half a file to start from
          await inData(
            ctx,
            'moving the copy in',
            '[ ! -d "$1/restore" ] || { mv -f "$1/restore"/* "$1/master/" 2>/dev/null; rm -rf "$1/restore"; }',
          );
          if (!(await hasMetadata(ctx))) await emptyMetadata(ctx);
          await startMaster(ctx);
          return { started: true };
        },
      }),
      remove_volume: agentMethod({
        description: 'Deletes the volume’s directory and everything in it',
        args: z.object({ name: VolumeName }),
        result: z.object({ removed: z.boolean() }),
        handle: async (ctx, a) => {
          const dir = await volumeDir(ctx, a.name);
          if (!exists(dir)) return { removed: false };
          await tool('rm', ['-rf', '--one-file-system', dir], 600_000);
          return { removed: true };
        },
      }),
      set_goal: agentMethod({
        description: 'Sets the goal of the volume’s directory and everything in it',
        args: z.object({ name: VolumeName, goal: Replicas }),
        result: z.object({ goal: z.number() }),
        handle: async (ctx, a) => {
          const dir = await volumeDir(ctx, a.name);
          if (!exists(dir)) throw new NotFoundError(`no volume ${a.name} on the file system`);
          await tool('mfssetgoal', ['-r', String(a.goal), dir], 600_000);
          return { goal: a.goal };
        },
      }),
      volumes: agentMethod({
        description: 'Each volume’s goal, quota, files and bytes',
        args: z.object({ names: z.array(VolumeName).max(1000) }),
        result: z.array(VolumeFigures),
        handle: async (ctx, a) => {
          const root = await admin(ctx);
          const out: z.infer<typeof VolumeFigures>[] = [];
          for (const name of a.names) {
            const dir = join(root, name);
            if (!exists(dir)) continue;
            const info = parseDirInfo(await tool('mfsdirinfo', ['-n', dir]));
            const goal = parseGoal(await tool('mfsgetgoal', [dir]));
            const quota = parseQuota(await tool('mfsgetquota', ['-n', dir]).catch(() => ''));
            out.push({
              name,
              ...(goal !== undefined ? { goal } : {}),
              ...(quota !== undefined ? { quotaBytes: quota } : {}),
              files: info.files,
              length: info.length,
              size: info.size,
            });
          }
          return out;
        },
      }),
      health: agentMethod({
        description: 'The master’s chunk servers, chunk classes and clients’ mounts (mfscli)',
        args: z.object({}),
        result: Health,
        handle: async (ctx) => ({
          servers: parseChunkServers(await masterTool(ctx, '-SCS')),
          chunks: parseChunkClasses(await masterTool(ctx, '-SIC')),
          mounts: parseMounts(await masterTool(ctx, '-SMS')),
        }),
      }),
      drain_status: agentMethod({
        description: 'What the master says of a drain: chunk servers, disks, and the goal/copies matrices',
        args: z.object({}),
        result: DrainStatus,
        handle: async (ctx) => ({
          servers: parseChunkServers(await masterTool(ctx, '-SCS')),
          disks: parseDisks(await masterTool(ctx, '-SHD')),
          matrix: parseChunkMatrix(await masterTool(ctx, '-SIC')),
          regularMatrix: parseChunkMatrix(await masterTool(ctx, '-SIC', '1')),
        }),
      }),
    },
    onConfigure,
    onStart,
  },
});
