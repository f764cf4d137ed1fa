import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CpsError,
  IdSchema,
  parseOrThrow,
  generateKeyPair,
  seal,
  sealingKeyFrom,
  unseal,
  type Identity,
  type KeyPair,
  type SealingKey,
} from '@cps/core';
import { publicKeyOfSeed } from '@cps/bus';
import { ownerTag } from '@cps/clouds';
import {
  busTrustPem,
  createPlatformSecrets,
  createServicesCa,
  issueBusIdentity,
  type BusIdentity,
  type KeySource,
  type PlatformSecrets,
} from '../trust.js';
import { loadMasterKey } from './master-key.js';
import { freePort, isFree } from '../nats-server/ports.js';

/** Public facts of a platform (no secrets): safe to show and to hand out. */
export interface PlatformInfo {
  readonly formatVersion: 1;
  readonly platformId: string;
  readonly createdAt: string;
  /** Client URL of the local nats-server this home launches (or of the cluster it joined). */
  readonly natsUrls: readonly string[];
  readonly natsPort: number;
  /** The HTTPS port of this home's director on 127.0.0.1 (absent in homes made before it: 14443). */
  readonly directorPort?: number;
  readonly busTrustPem: string;
  readonly userCaPem: string;
  readonly rootCaPem: string;
  /** The CA of services' HTTPS certificates (absent in homes made before it until their next `cps up`). */
  readonly servicesCaPem?: string;
  readonly operatorPublicKey: string;
  readonly accountPublicKey: string;
}

/**
 * How the local cloud of a home runs its nodes: `process` (processes on 127.0.0.1) or `host`
 * (each node a network namespace with an address of its own; root only). In host mode the
 * supervisor records the platform address its NATS listens on, which the nodes reach.
 */
export type PlatformNetwork =
  { readonly mode: 'process' } | { readonly mode: 'host'; readonly address?: string };

interface SealedSecrets extends PlatformSecrets {
  readonly serverKey: KeyPair;
}

const DIRECTOR_TTL_MS = 30 * 24 * 3600_000;

/** Where a platform's files live: `CPS_HOME`, else `~/.local/share/cps`. */
const preferredPort = async (port: number, taken: ReadonlySet<number> = new Set()): Promise<number> =>
  !taken.has(port) && (await isFree(port, '127.0.0.1')) ? port : freePort('127.0.0.1', taken);

export const defaultHome = (env: NodeJS.ProcessEnv = process.env): string =>
  env['CPS_HOME'] ?? join(env['XDG_DATA_HOME'] ?? join(homedir(), '.local', 'share'), 'cps');

const writeAtomic = (file: string, text: string, mode = 0o600): void => {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
};

/**
 * The one owner of a platform's data directory: creates it (CAs, operator keys, the first
 * director's identity) and reads it back. Private keys are sealed with the master key; only
 * `runtime/` holds clear keys, for servers that must read them, at mode 0600.
 */
export class PlatformHome {
  private constructor(
    readonly dir: string,
    private readonly key: SealingKey,
  ) {}

  get infoFile(): string {
    return join(this.dir, 'platform.json');
  }
  get natsDir(): string {
    return join(this.dir, 'nats');
  }
  get runDir(): string {
    return join(this.dir, 'run');
  }

  /** Names what this home makes in the kernel (host mode): a hash of its directory. */
  get tag(): string {
    return ownerTag(this.dir);
  }

  network(): PlatformNetwork {
    try {
      const n = JSON.parse(readFileSync(join(this.dir, 'network.json'), 'utf8')) as PlatformNetwork;
      return n.mode === 'host' ? n : { mode: 'process' };
    } catch {
      return { mode: 'process' };
    }
  }

  setNetwork(n: PlatformNetwork): void {
    writeAtomic(join(this.dir, 'network.json'), JSON.stringify(n) + '\n', 0o644);
  }

  /**
   * Where this home's processes and nodes reach NATS: in host mode, the recorded platform address
   * (the server listens there only); else the URLs of `platform.json`.
   */
  natsUrls(): readonly string[] {
    const n = this.network();
    const info = this.info();
    return n.mode === 'host' && n.address !== undefined
      ? [`tls://${n.address}:${info.natsPort}`]
      : info.natsUrls;
  }

  static exists(dir: string): boolean {
    return existsSync(join(dir, 'platform.json'));
  }

  /** Opens an existing home, or creates it. Idempotent. */
  static async init(
    dir: string,
    o: {
      env?: NodeJS.ProcessEnv;
      natsPort?: number;
      directorPort?: number;
      /** The NATS URLs of a cluster the platform runs on (default: the local server on `natsPort`). */
      natsUrls?: readonly string[];
      keys?: KeySource;
      now?: Date;
    } = {},
  ): Promise<PlatformHome> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const home = new PlatformHome(dir, loadMasterKey(dir, o.env, !PlatformHome.exists(dir)));
    if (!PlatformHome.exists(dir)) {
      // the usual ports when free, else any free loopback port below 32000; kept for every later start
      const nats = o.natsPort ?? (await preferredPort(14222));
      const director = o.directorPort ?? (await preferredPort(14443, new Set([nats])));
      await home.create(nats, director, o.keys, o.now ?? new Date(), o.natsUrls);
    } else home.upgrade(o.now ?? new Date(), o.keys);
    return home;
  }

  static open(dir: string, env?: NodeJS.ProcessEnv): PlatformHome {
    if (!PlatformHome.exists(dir))
      throw new CpsError('not_found', `no platform at ${dir}: run \`cps up\` first`);
    const home = new PlatformHome(dir, loadMasterKey(dir, env));
    home.secrets();
    return home;
  }

  info(): PlatformInfo {
    return JSON.parse(readFileSync(this.infoFile, 'utf8')) as PlatformInfo;
  }

  secrets(): SealedSecrets {
    const sealed = readFileSync(join(this.dir, 'secrets.sealed'), 'utf8');
    return JSON.parse(unseal(this.key, sealed, 'platform-secrets').toString('utf8')) as SealedSecrets;
  }

  /** Adds what a home made by an earlier version lacks: the services CA. */
  private upgrade(now: Date, keys?: KeySource): void {
    const secrets = this.secrets();
    if (secrets.servicesCa) return;
    const servicesCa = createServicesCa(now, keys);
    const sealed: SealedSecrets = { ...secrets, servicesCa };
    writeAtomic(join(this.dir, 'secrets.sealed'), seal(this.key, JSON.stringify(sealed), 'platform-secrets'));
    const info: PlatformInfo = { ...this.info(), servicesCaPem: servicesCa.certPem };
    writeAtomic(this.infoFile, JSON.stringify(info, null, 2) + '\n', 0o644);
  }

  /** The id of the director this home belongs to (`d1` for the home that created the platform). */
  directorId(): string {
    const file = join(this.dir, 'local.json');
    return existsSync(file)
      ? (JSON.parse(readFileSync(file, 'utf8')) as { directorId: string }).directorId
      : 'd1';
  }

  /** The stored identity of a director of this platform, re-issued when it nears expiry. */
  async directorIdentity(id = this.directorId(), now = new Date()): Promise<BusIdentity> {
    const file = join(this.dir, 'identities', `director-${id}.sealed`);
    if (existsSync(file)) {
      const stored = JSON.parse(
        unseal(this.key, readFileSync(file, 'utf8'), `identity:${id}`).toString('utf8'),
      ) as BusIdentity;
      if (new Date(stored.certExpiresAt).getTime() - now.getTime() > DIRECTOR_TTL_MS / 3) return stored;
    }
    const identity: Identity = { role: 'director', id };
    const issued = await issueBusIdentity(this.secrets(), identity, {
      now,
      ttlMs: DIRECTOR_TTL_MS,
      key: generateKeyPair(),
    });
    mkdirSync(join(this.dir, 'identities'), { recursive: true, mode: 0o700 });
    writeAtomic(file, seal(this.key, JSON.stringify(issued), `identity:${id}`));
    return issued;
  }

  /**
   * The key of a director's HTTPS certificate, made once and kept (sealed): the certificate is issued
   * again at every start, its key stays, so a browser or client that pins the key keeps trusting it.
   */
  directorHttpsKey(id = this.directorId()): KeyPair {
    const file = join(this.dir, 'identities', `director-${id}-https.sealed`);
    if (existsSync(file))
      return JSON.parse(
        unseal(this.key, readFileSync(file, 'utf8'), `https:${id}`).toString('utf8'),
      ) as KeyPair;
    const key = generateKeyPair();
    mkdirSync(join(this.dir, 'identities'), { recursive: true, mode: 0o700 });
    writeAtomic(file, seal(this.key, JSON.stringify(key), `https:${id}`));
    return key;
  }

  private async create(
    natsPort: number,
    directorPort: number,
    keys: KeySource | undefined,
    now: Date,
    natsUrls?: readonly string[],
  ): Promise<void> {
    const secrets = createPlatformSecrets(now, keys);
    const serverKey = keys ? keys.next() : generateKeyPair();
    const sealed: SealedSecrets = { ...secrets, serverKey };
    writeAtomic(join(this.dir, 'secrets.sealed'), seal(this.key, JSON.stringify(sealed), 'platform-secrets'));
    const info: PlatformInfo = {
      formatVersion: 1,
      platformId: randomBytes(8).toString('hex'),
      createdAt: now.toISOString(),
      natsUrls: natsUrls ?? [`tls://127.0.0.1:${natsPort}`],
      natsPort,
      directorPort,
      busTrustPem: busTrustPem(secrets),
      userCaPem: secrets.userCa.certPem,
      rootCaPem: secrets.root.certPem,
      servicesCaPem: secrets.servicesCa.certPem,
      operatorPublicKey: publicKeyOfSeed(secrets.operator.operatorSeed),
      accountPublicKey: publicKeyOfSeed(secrets.operator.accountSeed),
    };
    writeAtomic(this.infoFile, JSON.stringify(info, null, 2) + '\n', 0o644);
    await this.directorIdentity('d1', now);
  }
}

/**
 * The material a second director needs to join a platform, sealed with a passphrase that travels
 * separately. It holds the issuing CAs and operator keys (a director hosts the identity issuer).
 */
export const exportJoinBundle = (home: PlatformHome, passphrase: string): string =>
  seal(
    sealingKeyFromPassphrase(passphrase),
    // the URLs its NATS answers at now (a host-mode platform's address, not the loopback one)
    JSON.stringify({ info: { ...home.info(), natsUrls: home.natsUrls() }, secrets: home.secrets() }),
    'join-bundle',
  );

/** Creates a home at `dir` from a join bundle (the new director's own master key seals it). */
export const joinPlatform = async (
  dir: string,
  bundle: string,
  passphrase: string,
  o: { env?: NodeJS.ProcessEnv; directorId: string; natsUrls?: readonly string[] },
): Promise<PlatformHome> => {
  parseOrThrow(IdSchema, o.directorId, 'director id');
  if (PlatformHome.exists(dir)) throw new CpsError('conflict', `${dir} already holds a platform`);
  const opened = JSON.parse(
    unseal(sealingKeyFromPassphrase(passphrase), bundle.trim(), 'join-bundle').toString('utf8'),
  ) as {
    info: PlatformInfo;
    secrets: SealedSecrets;
  };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = loadMasterKey(dir, o.env, true);
  writeAtomic(join(dir, 'secrets.sealed'), seal(key, JSON.stringify(opened.secrets), 'platform-secrets'));
  const info: PlatformInfo = { ...opened.info, natsUrls: o.natsUrls ?? opened.info.natsUrls };
  writeAtomic(join(dir, 'platform.json'), JSON.stringify(info, null, 2) + '\n', 0o644);
  writeAtomic(join(dir, 'local.json'), JSON.stringify({ directorId: o.directorId }) + '\n', 0o644);
  const home = PlatformHome.open(dir, o.env);
  await home.directorIdentity(o.directorId);
  return home;
};

export const sealingKeyFromPassphrase = (passphrase: string): SealingKey => {
  if (passphrase.length < 16)
    throw new CpsError('validation', 'the join passphrase must have at least 16 characters', [
      { path: '$.passphrase', code: 'too_short', message: 'at least 16 characters' },
    ]);
  return sealingKeyFrom(passphrase);
};
