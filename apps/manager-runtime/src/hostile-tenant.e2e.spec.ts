import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create as tarCreate } from 'tar';
import {
  subjects,
  type Bus,
  addNodes,
  callMethod,
  getServiceInfo,
  listNodes,
  setArchive,
  shutdownService,
  startupService,
} from '@cps/bus';
import { workloadUser } from '@cps/clouds';
import { ArchiveStore, ensureArchiveBucket } from '@cps/archives';
import { genericService } from '@cps/services';
import { eventually, TestHost } from '@cps/testing';
import type { ManagerRuntime } from './runtime/manager-runtime.js';
import { startManager, stopManager } from './manager.spec-helpers.js';

const AGENT = join(process.cwd(), 'apps', 'agent-runtime', 'dist', 'main.js');
const at = subjects.manager('a1', 'h1');
const root = process.getuid?.() === 0;

/** Every entry under `dir` (itself included) with its type, mode, owner and content digest. */
const snapshot = (dir: string): Record<string, string> => {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string): void => {
    const st = lstatSync(p);
    const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
    const digest = kind === 'file' ? createHash('sha256').update(readFileSync(p)).digest('hex') : '';
    out[rel] = `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${digest}`;
    if (kind === 'dir') for (const e of readdirSync(p).sort()) walk(join(p, e), `${rel}/${e}`);
  };
  walk(dir, '.');
  return out;
};

/** Live processes whose command line holds `marker` as one argument. */
const processesWith = (marker: string): number[] =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        const state = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.[0];
        return cmd.includes(marker) && state !== 'Z';
      } catch {
        return false;
      }
    })
    .map(Number);

const tarGz = async (files: Record<string, string>): Promise<Buffer> => {
  const src = mkdtempSync(join(tmpdir(), 'cps-hostile-src-'));
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(join(src, name, '..'), { recursive: true });
    writeFileSync(join(src, name), body, { mode: 0o755 });
  }
  const file = join(src, '..', `${src.split('/').pop()}.tar.gz`);
  await tarCreate({ gzip: true, file, cwd: src }, Object.keys(files));
  const bytes = readFileSync(file);
  rmSync(src, { recursive: true, force: true });
  rmSync(file, { force: true });
  return bytes;
};

/**
 * A tenant that attacks the node it runs on: its scripts plant links where the agent used to
 * write (`agents.json`, `.code-version`) and into a directory the platform's root processes must
 * never touch, race the agent's renames in the work directory while it unpacks new code, and leave
 * processes behind in sessions of their own.
 */
describe('a hostile tenant on its own nodes (root agent, workloads as the workload user)', () => {
  let host: TestHost;
  let manager: ManagerRuntime;
  let director: Bus;
  let victim: string;
  let before: Record<string, string>;
  const marker = `cps-hostile-${randomBytes(6).toString('hex')}`;

  const until = async (state: string) => {
    const r = await eventually(
      () => director.request(at, getServiceInfo, {}),
      (i) => i.state === state,
      30_000,
    );
    expect(r.state).toBe(state);
  };
  const upload = async (version: string, archive: Buffer) => {
    await new ArchiveStore(director.connection, { serviceId: 'h1' }).put(version, archive, {
      maxBytes: 16 * 1024 * 1024,
    });
    return director.request(at, setArchive, { version }, { timeoutMs: 60_000 });
  };
  const nodeDirs = async () =>
    (await director.request(at, listNodes, {})).nodes.map((n) => join(host.dir, 'cloud', 'nodes', n.nodeId));
  const scriptStatus = async () =>
    (
      (await director.request(at, callMethod, { method: 'get_script_status', args: {} })).result as {
        nodes: Record<string, Record<string, string>>;
      }
    ).nodes;

  beforeAll(async () => {
    if (!root || workloadUser() === undefined)
      throw new Error(
        'needs root and the workload account (scripts/setup.sh): this suite is about privilege',
      );
    // outside the platform: root's, closed to the workload user, as a host's private files are
    victim = mkdtempSync(join(tmpdir(), 'cps-victim-'));
    chmodSync(victim, 0o700);
    writeFileSync(join(victim, 'secret-a'), 'root only, a\n', { mode: 0o600 });
    writeFileSync(join(victim, 'secret-b'), 'root only, b\n', { mode: 0o600 });
    mkdirSync(join(victim, 'private'), { mode: 0o700 });
    before = snapshot(victim);

    host = await TestHost.start({ agentEntry: AGENT, stopGraceMs: 2_000 });
    manager = await startManager(host, {
      service: genericService,
      appId: 'a1',
      serviceId: 'h1',
      readyTimeoutMs: 20_000,
      // the racing scripts load a small machine: this suite is not about failure detection
      heartbeatTimeoutMs: 15_000,
    });
    director = host.bus;
    await ensureArchiveBucket(director.connection, 'h1');
  });
  afterAll(async () => {
    await stopManager(manager);
    await host?.cleanup();
    if (victim) rmSync(victim, { recursive: true, force: true });
  });

  it('plants links where the agent writes: the agent replaces them, nothing outside the node changes', async () => {
    await director.request(at, startupService, {});
    await until('RUNNING');
    const v1 = await tarGz({
      'init.sh': [
        `rm -rf agents.json .code-version`,
        `ln -s ${victim}/secret-a agents.json`,
        `ln -s ${victim}/secret-b .code-version`,
        `ln -s ${victim}/private .code.partial-planted`,
        // a process of its own session and group, left behind on purpose
        `setsid sh -c ': > loop.started; while :; do sleep 1; done' ${marker} >/dev/null 2>&1 &`,
        // once it has left: a process still in the script's group ends with the script
        `while [ ! -e loop.started ]; do sleep 0.1; done`,
        `echo planted`,
      ].join('\n'),
    });
    await upload('v1', v1);
    await director.request(at, addNodes, { nodes: { node: 1 } });
    await until('RUNNING');
    await eventually(
      scriptStatus,
      (s) => Object.values(s).length === 2 && Object.values(s).every((n) => n['init'] === 'exited'),
      20_000,
    );
    // each node planted its links after its peers list was written: a new node changes the list again
    await director.request(at, addNodes, { nodes: { node: 1 } });
    await until('RUNNING');
    const dirs = await nodeDirs();
    expect(dirs).toHaveLength(3);
    for (const dir of dirs) {
      const agents = join(dir, 'work', 'agents.json');
      const st = await eventually(
        async () => lstatSync(agents, { throwIfNoEntry: false }),
        (s) => s?.isFile() === true && JSON.parse(readFileSync(agents, 'utf8')).length === 3,
        10_000,
      );
      expect(st?.isFile()).toBe(true);
      expect(st?.uid).toBe(workloadUser()!.uid);
      expect((JSON.parse(readFileSync(agents, 'utf8')) as unknown[]).length).toBe(3);
    }
    expect(snapshot(victim)).toEqual(before);
  });

  it('races the agent while it unpacks new code: nothing outside the node changes', async () => {
    const files: Record<string, string> = {
      // swaps whatever the agent may be unpacking or moving in for links to the victim, for two minutes at most
      'race.sh': [
        `: > race.started`,
        `end=$(( $(date +%s) + 120 ))`,
        `while [ "$(date +%s)" -lt "$end" ]; do`,
        `  for d in .code.partial-* code; do`,
        `    [ -e "$d" ] || [ -L "$d" ] || continue`,
        `    mv -f "$d" "moved-$$" 2>/dev/null && rm -rf "moved-$$"`,
        `    ln -sfn ${victim}/private "$d" 2>/dev/null`,
        `  done`,
        `done`,
      ].join('\n'),
      // one node races (a tight loop of processes on each would starve a small machine)
      'init.sh': `[ "$MY_ROLE" = master ] || exit 0\ncp code/race.sh race.sh; setsid sh race.sh ${marker} >/dev/null 2>&1 &\nwhile [ ! -e race.started ]; do sleep 0.1; done\necho racing\n`,
    };
    for (let i = 0; i < 1500; i++) files[`many/f${i}.txt`] = `file ${i}\n`;
    await upload('v2', await tarGz(files));

    // v3 is unpacked while v2's init.sh races, on every node
    const v3: Record<string, string> = { 'init.sh': 'echo v3\n' };
    for (let i = 0; i < 1500; i++) v3[`many/g${i}.txt`] = `file ${i}\n`;
    // moved in once the racer lets go, or refused as busy: never written through its links
    await upload('v3', await tarGz(v3)).catch((e: unknown) => expect(e).toMatchObject({ code: 'conflict' }));
    expect(snapshot(victim)).toEqual(before);
    for (const dir of await nodeDirs()) {
      // the agent's own directory holds what it unpacks and keeps: no link of the tenant's is in it
      for (const sub of ['staging', 'state']) {
        const entries = readdirSync(join(dir, sub), { withFileTypes: true }).filter(Boolean);
        expect(entries.filter((e) => e.isSymbolicLink())).toEqual([]);
      }
    }
  });

  it('leaves processes behind in sessions of their own: they end with the nodes', async () => {
    expect(processesWith(marker).length).toBeGreaterThanOrEqual(4);
    await director.request(at, shutdownService, {});
    await until('STOPPED');
    const left = await eventually(
      async () => processesWith(marker),
      (p) => p.length === 0,
      10_000,
    );
    expect(left).toEqual([]);
    expect(snapshot(victim)).toEqual(before);
  });
});
