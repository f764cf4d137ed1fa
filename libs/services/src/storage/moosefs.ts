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
    // a file deleted is gone at once: a deleted volume frees its space
    EMPTY_TRASH_PERIOD: 1,
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
  out.split('\n').flatMap((line) => {
    const f = line.split('|').map((x) => x.trim());
    if (!f[0]?.startsWith('chunk servers') || f.length < 11) return [];
    const n = (i: number) => Number(f[i]);
    if (![2, 8, 9, 10].every((i) => Number.isFinite(n(i)))) return [];
    return [{ address: f[1]!, port: n(2), chunks: n(8), usedBytes: n(9), totalBytes: n(10) }];
  });

/**
 * Reads `mfscli -SMS -p -n -s '|'`: the clients' mounts, as rows
 * `active mounts, parameters:|<session>|<ip>|<mount point>|<open files>|<sockets>|<version>|<sub-folder>|...`.
 */
export const parseMounts = (out: string): { address: string; path: string }[] =>
  out.split('\n').flatMap((line) => {
    const f = line.split('|').map((x) => x.trim());
    if (!f[0]?.startsWith('active mounts') || !f[7]?.startsWith('/')) return [];
    return [{ address: f[2]!, path: f[7] }];
  });
