/**
 * MooseFS as the storage service runs it (ADR 13): the configuration files of its master and chunk
 * servers, the arguments of its client, and what its tools print, read back. Pure: no process, no file.
 */

/** The ports of a node, as offsets from the first of its range. */
export const PORTS = {
  /** master <-> metaloggers */
  metaloggers: 0,
  /** master <-> chunk servers */
  chunkservers: 1,
  /** master <-> clients (mounts, tools) */
  clients: 2,
  /** a chunk server's own */
  chunkserver: 3,
} as const;

export interface MasterFiles {
  /** Absolute path of the master's data directory (metadata and change logs). */
  readonly dataPath: string;
  /** Absolute path of the exports file. */
  readonly exportsPath: string;
  readonly address: string;
  readonly firstPort: number;
}

const cfg = (entries: Readonly<Record<string, string | number>>): string =>
  Object.entries(entries)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n') + '\n';

/** mfsmaster.cfg: everything in the node's data directory, listening on the node's address only. */
export const masterConfig = (m: MasterFiles): string =>
  cfg({
    DATA_PATH: m.dataPath,
    EXPORTS_FILENAME: m.exportsPath,
    LOCK_FILE: `${m.dataPath}/.mfsmaster.lock`,
    MATOML_LISTEN_HOST: m.address,
    MATOML_LISTEN_PORT: m.firstPort + PORTS.metaloggers,
    MATOCS_LISTEN_HOST: m.address,
    MATOCS_LISTEN_PORT: m.firstPort + PORTS.chunkservers,
    MATOCL_LISTEN_HOST: m.address,
    MATOCL_LISTEN_PORT: m.firstPort + PORTS.clients,
    // the trash is emptied every hour (volumes keep no trash: see the agent's make_volume)
    EMPTY_TRASH_PERIOD: 1,
    // every chunk checked every 60 s (MooseFS's least) rather than 300, with more copies made at once:
    // a goal raised, a disk drained, a server lost are acted on within a minute or two
    CHUNKS_LOOP_MIN_TIME: 60,
    CHUNKS_WRITE_REP_LIMIT: '20,20,20,20',
    CHUNKS_READ_REP_LIMIT: '50,50,50,50',
    // replications start 10 s after the master does (60 by default): time for its chunk servers to
    // connect, not to be counted missing
    REPLICATIONS_DELAY_INIT: 10,
  });

/**
 * mfsexports.cfg: the whole file system to the master's own node (where the service's volumes are
 * administered), the volumes, by password, to the nodes of services that link this one. Root is
 * root on a mount (the mounting agent gives the volume to its workload user).
 */
export const exportsConfig = (o: { readonly masterAddress: string; readonly password: string }): string =>
  [
    `${o.masterAddress} / rw,alldirs,admin,maproot=0:0`,
    `* / rw,alldirs,maproot=0:0,password=${o.password}`,
  ].join('\n') + '\n';

export interface ChunkFiles {
  readonly dataPath: string;
  readonly hddConfPath: string;
  readonly address: string;
  readonly firstPort: number;
  readonly master: { readonly address: string; readonly port: number };
}

/** mfschunkserver.cfg: its chunks under the node's data directory, its master given by address. */
export const chunkConfig = (c: ChunkFiles): string =>
  cfg({
    DATA_PATH: c.dataPath,
    HDD_CONF_FILENAME: c.hddConfPath,
    LOCK_FILE: `${c.dataPath}/.mfschunkserver.lock`,
    MASTER_HOST: c.master.address,
    MASTER_PORT: c.master.port,
    CSSERV_LISTEN_HOST: c.address,
    CSSERV_LISTEN_PORT: c.firstPort + PORTS.chunkserver,
    // small disks (a test machine's): keep 64 MiB free rather than 256
    HDD_LEAVE_SPACE_DEFAULT: '64MiB',
  });

export interface MetaloggerFiles {
  readonly dataPath: string;
  readonly master: { readonly address: string; readonly port: number };
}

/**
 * mfsmetalogger.cfg: a copy of the master's metadata (downloaded every hour) and of its change log
 * (as it happens), in the node's data directory: what a new master starts from if the master's node
 * is lost.
 */
export const metaloggerConfig = (m: MetaloggerFiles): string =>
  cfg({
    DATA_PATH: m.dataPath,
    LOCK_FILE: `${m.dataPath}/.mfsmetalogger.lock`,
    MASTER_HOST: m.master.address,
    MASTER_PORT: m.master.port,
    META_DOWNLOAD_FREQ: 1,
  });

/**
 * The files of a metalogger's directory a new master starts from (`mfsmaster -a` replays the change
 * logs onto the metadata): the metadata it downloaded, if any (a master that never saved its metadata
 * gives none: the new master starts from an empty file system and replays every change), and the
 * change logs.
 */
export const isRestoreFile = (name: string): boolean =>
  /^(metadata_ml\.mfs\.back(\.\d+)?|changelog_ml(_back)?\.\d+\.mfs)$/.test(name);

/** The number of the last change in a change log (`<id>: <time>|<operation>` lines); 0 if none. */
export const lastChange = (changelog: string): number => {
  const lines = changelog.trimEnd().split('\n');
  const m = /^(\d+):/.exec(lines[lines.length - 1] ?? '');
  return m ? Number(m[1]) : 0;
};

/** mfshdd.cfg: one chunk directory; `*` first marks it for removal (its chunks are copied away). */
export const hddConfig = (dir: string, draining: boolean): string => `${draining ? '*' : ''}${dir}\n`;

/** mfsmount's arguments: `volume` of the file system at `master` (the root with none), on `dir`. */
export const mountArgs = (o: {
  readonly dir: string;
  readonly master: { readonly address: string; readonly port: number };
  readonly volume?: string;
  readonly password?: string;
}): string[] => [
  o.dir,
  '-H',
  o.master.address,
  '-P',
  String(o.master.port),
  '-S',
  `/${o.volume ?? ''}`,
  '-o',
  ['allow_other', 'mfscachemode=AUTO', ...(o.password ? [`mfspassword=${o.password}`] : [])].join(','),
];

/** What `mfsdirinfo -n` says of a directory. */
export interface DirInfo {
  readonly files: number;
  /** Sum of the files' lengths. */
  readonly length: number;
  /** Their chunks' sizes, one copy. */
  readonly size: number;
}

/** Reads `mfsdirinfo -n <dir>`'s output (`key: value` lines). */
export const parseDirInfo = (out: string): DirInfo => {
  const v = (k: string): number => {
    const m = new RegExp(`^\\s*${k}:\\s*(\\d+)`, 'm').exec(out);
    return m ? Number(m[1]) : 0;
  };
  return { files: v('files'), length: v('length'), size: v('size') };
};

/** Reads `mfsgetgoal <dir>`'s output (`<dir>: <n>`), the goal; undefined if it says none. */
export const parseGoal = (out: string): number | undefined => {
  const m = /:\s*(\d+)\s*$/m.exec(out.trim());
  return m ? Number(m[1]) : undefined;
};

/** Reads the hard limit of the files' lengths from `mfsgetquota -n <dir>`; undefined when none. */
export const parseQuota = (out: string): number | undefined => {
  const m = /^\s*length\s*\|\s*\d+\s*\|\s*\S+\s*\|\s*(\d+)\s*\|/m.exec(out);
  return m ? Number(m[1]) : undefined;
};

/**
 * The master's chunk classes from `mfscli -SIC -p -n -s '|'` (`chunkclass <name>:|<count>`): chunks
 * with no copy (`missing`), one copy of a goal above one (`endangered`), fewer copies than their goal
 * (`undergoal`). MooseFS counts them for the whole file system, not per directory.
 */
export const parseChunkClasses = (out: string): Record<string, number> =>
  Object.fromEntries(
    out.split('\n').flatMap((line) => {
      const m = /chunkclass ([a-z ]+):\|(\d+)/.exec(line);
      return m ? [[m[1]!.replace(/ /g, '_'), Number(m[2])]] : [];
    }),
  );

/** The fields of each line of `mfscli ... -p -n -s '|'` output whose first field starts with `set`. */
const rows = (out: string, set: string): string[][] =>
  out.split('\n').flatMap((line) => {
    const f = line.split('|').map((x) => x.trim());
    return f[0]?.startsWith(set) ? [f] : [];
  });

/** One row of `mfscli -SCS -p -n -s '|'`: a chunk server the master has. */
export interface ChunkServerRow {
  readonly address: string;
  readonly port: number;
  readonly chunks: number;
  readonly usedBytes: number;
  readonly totalBytes: number;
}

/**
 * Reads `mfscli -SCS -p -n -s '|'`: the chunk servers connected to the master, as rows
 * `chunk servers:|<ip>|<port>|<id>|<name>|<version>|<load>|<maintenance>|<chunks>|<used>|<total>|...`.
 */
export const parseChunkServers = (out: string): ChunkServerRow[] =>
  rows(out, 'chunk servers').flatMap((f) => {
    if (f.length < 11) return [];
    const n = (i: number) => Number(f[i]);
    if (![2, 8, 9, 10].every((i) => Number.isFinite(n(i)))) return [];
    return [{ address: f[1]!, port: n(2), chunks: n(8), usedBytes: n(9), totalBytes: n(10) }];
  });

/**
 * Reads `mfscli -SMS -p -n -s '|'`: the clients' mounts, as rows
 * `active mounts, parameters:|<session>|<ip>|<mount point>|<open files>|<sockets>|<version>|<sub-folder>|...`.
 */
export const parseMounts = (out: string): { address: string; path: string }[] =>
  rows(out, 'active mounts').flatMap((f) => {
    if (!f[7]?.startsWith('/')) return [];
    return [{ address: f[2]!, path: f[7] }];
  });

/** One chunk server disk, as `mfscli -SHD -p -n -s '|'` lists it: `disks:|<ip>:<port>:<path>|<chunks>|<errors>|<status>|...`. */
export interface DiskRow {
  readonly server: string;
  readonly path: string;
  readonly chunks: number;
  /** `ok`, `marked for removal (not ready)`, `marked for removal (ready)`, `damaged`, ... */
  readonly status: string;
}

export const parseDisks = (out: string): DiskRow[] =>
  rows(out, 'disks').flatMap((f) => {
    const m = /^(\d+\.\d+\.\d+\.\d+:\d+):(.*)$/.exec(f[1] ?? '');
    if (!m || f.length < 5) return [];
    return [{ server: m[1]!, path: m[2]!, chunks: Number(f[2]), status: f[4]! }];
  });

/** The chunk classes of chunks with fewer copies than their goal. */
const SHORT = ['missing', 'endangered', 'undergoal'] as const;

/** Chunks with fewer copies than their goal (none, one of a goal above one, or too few). */
export const shortOfGoal = (chunks: Readonly<Record<string, number>>): number =>
  SHORT.reduce((sum, k) => sum + (chunks[k] ?? 0), 0);

/** How many chunks of a goal have so many copies: one cell of `mfscli -SIC`'s matrix. */
export interface MatrixCell {
  readonly goal: number;
  readonly copies: number;
  readonly chunks: number;
}

/** Reads the goal/copies matrix of `mfscli -SIC [-m 1] -p -n -s '|'` (`...goal/copies/chunks:|<goal>|<copies>|<count>`). */
export const parseChunkMatrix = (out: string): MatrixCell[] =>
  out.split('\n').flatMap((line) => {
    const m = /goal\/copies\/chunks:\|(\d+)\|(\d+)\|(\d+)/.exec(line);
    return m ? [{ goal: Number(m[1]), copies: Number(m[2]), chunks: Number(m[3]) }] : [];
  });

/**
 * Whether a chunk server being drained (`server`: `<address>:<port>`) can go. All from the master:
 * its disks are marked for removal (`mfscli -SHD`); the master counts none of its chunks as regular
 * copies any more (`-SCS` gives it 0 chunks: the marking reached the chunk table); and no chunk needs
 * a marked copy. The last compares the goal/copies matrix counting every copy (`-SIC`) with the one
 * counting regular copies only (`-SIC -m 1`): for each goal g and each t up to the copies the other
 * servers can hold (g, at most one per server left), as many chunks have fewer than t copies in one
 * as in the other. A chunk only loses copies without the marked ones, so equal counts mean none falls
 * below what the servers left can keep; a chunk short for another reason (a node down, a goal above
 * the servers left) does not hold the drain back. MooseFS's own `marked for removal (ready)` is not
 * used: it stays `(not ready)` long after the copies are made.
 */
export const drained = (
  o: {
    readonly disks: readonly DiskRow[];
    readonly servers: readonly { readonly address: string; readonly port: number; readonly chunks: number }[];
    readonly matrix: readonly MatrixCell[];
    readonly regularMatrix: readonly MatrixCell[];
  },
  server: string,
): boolean => {
  const left = o.servers.filter((c) => `${c.address}:${c.port}` !== server).length;
  const fewer = (m: readonly MatrixCell[], goal: number, t: number) =>
    m.filter((c) => c.goal === goal && c.copies < t).reduce((sum, c) => sum + c.chunks, 0);
  const goals = [...new Set([...o.matrix, ...o.regularMatrix].map((c) => c.goal))];
  return (
    o.disks.filter((d) => d.server === server).every((d) => d.status.startsWith('marked for removal')) &&
    o.servers.filter((c) => `${c.address}:${c.port}` === server).every((c) => c.chunks === 0) &&
    goals.every((g) =>
      Array.from({ length: Math.min(g, left) }, (_, i) => i + 1).every(
        (t) => fewer(o.matrix, g, t) === fewer(o.regularMatrix, g, t),
      ),
    )
  );
};
