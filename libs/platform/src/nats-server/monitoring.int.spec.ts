import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@cps/core';
import { createPlatformSecrets, NatsServers } from '@cps/platform';

/** TCP ports process `pid` listens on (from its socket inodes and /proc/net/tcp). */
const listeningPorts = (pid: number): number[] => {
  const inodes = new Set(
    readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        return m ? [m[1]] : [];
      } catch {
        return [];
      }
    }),
  );
  return ['tcp', 'tcp6']
    .flatMap((f) => readFileSync(`/proc/net/${f}`, 'utf8').split('\n').slice(1))
    .map((l) => l.trim().split(/\s+/))
    .filter((c) => c[3] === '0A' && inodes.has(c[9]))
    .map((c) => parseInt(c[1]!.split(':')[1]!, 16))
    .sort((a, b) => a - b);
};

/**
 * The monitoring port answers anyone who reaches it, credentials or not (`/connz?subs=1` lists
 * every identity): the embedded platform's server, whose host runs workloads, has none.
 */
describe('the nats-server monitoring port', () => {
  let dir: string | undefined;
  let servers: NatsServers | undefined;
  afterEach(async () => {
    await servers?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const start = async (monitoring?: boolean) => {
    dir = mkdtempSync(join(tmpdir(), 'cps-monitor-'));
    const key = generateKeyPair();
    const secrets = createPlatformSecrets(new Date(), { next: () => key });
    servers = await NatsServers.start({
      dir,
      secrets,
      serverKey: key,
      ...(monitoring === undefined ? {} : { monitoring }),
    });
    return servers;
  };

  it('is absent when monitoring is off: the server listens on its client port only', async () => {
    const s = await start(false);
    const pid = s.processes[0]!.pid;
    expect(listeningPorts(pid)).toEqual([s.nodes[0]!.port]);
    expect(readFileSync(s.nodes[0]!.configFile, 'utf8')).not.toMatch(/^http/m);
    expect(await s.processes[0]!.healthy()).toBe(true);
  });

  it('is there by default, answering without credentials (what the platform must not expose)', async () => {
    const s = await start();
    const n = s.nodes[0]!;
    expect(listeningPorts(s.processes[0]!.pid)).toEqual([n.port, n.monitorPort].sort((a, b) => a! - b!));
    const r = await fetch(`http://127.0.0.1:${n.monitorPort}/connz?subs=1`);
    expect(r.status).toBe(200);
  });
});
