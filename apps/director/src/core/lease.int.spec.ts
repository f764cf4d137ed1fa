import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { spawnSource, TestNats } from '@cps/testing';
import { ensureLeaseStream, Lease, LEASE_STREAM } from './lease.js';
import type { ContenderPlan, Term } from './lease-contender.spec-helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('leader lease on create-only appends', () => {
  let nats: TestNats;
  let a: NatsConnection;
  let b: NatsConnection;
  beforeAll(async () => {
    nats = await TestNats.start();
    a = await nats.connect({ role: 'director', id: 'd1' });
    b = await nats.connect({ role: 'director', id: 'd2' });
    await ensureLeaseStream(a);
  });
  afterAll(async () => nats.cleanup());

  it('elects one leader that keeps the lease, and hands over within two epochs when it stops', async () => {
    const epochMs = 400;
    const changes: string[] = [];
    const one = new Lease(a, { name: 't1', holder: 'd1', epochMs, onChange: (l) => changes.push(`d1:${l}`) });
    const two = new Lease(b, { name: 't1', holder: 'd2', epochMs, onChange: (l) => changes.push(`d2:${l}`) });
    one.start();
    two.start();
    let both = 0;
    let samples = 0;
    const until = Date.now() + 10 * epochMs;
    while (Date.now() < until) {
      if (one.leading && two.leading) both++;
      samples++;
      await sleep(10);
    }
    expect(both).toBe(0);
    expect(samples).toBeGreaterThan(100);
    // exactly one became leader and stayed so
    expect(changes).toHaveLength(1);
    const leader = changes[0]!.startsWith('d1') ? one : two;
    const other = leader === one ? two : one;
    expect(leader.leading).toBe(true);

    const stoppedAt = Date.now();
    await leader.stop();
    while (!other.leading && Date.now() - stoppedAt < 5 * epochMs) await sleep(10);
    expect(other.leading).toBe(true);
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(2 * epochMs + 200);
    await other.stop();
  });
});

const CONTENDER = fileURLToPath(new URL('./lease-contender.spec-helpers.ts', import.meta.url));

/** A contender process: `ready` once connected, then its terms when its rounds are over. */
class Contender {
  private readonly lines: AsyncIterator<string>;
  private stderr = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly child: ChildProcess,
    plan: ContenderPlan,
  ) {
    this.lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    child.stderr!.on('data', (d: Buffer) => (this.stderr += String(d)));
    this.exited = new Promise((r) => child.on('exit', r));
    child.stdin!.write(`${JSON.stringify(plan)}\n`);
  }

  private async line(): Promise<string> {
    const l = await this.lines.next();
    if (l.done) throw new Error(`contender ended early (exit ${String(await this.exited)}): ${this.stderr}`);
    return l.value;
  }

  async ready(): Promise<void> {
    expect(await this.line()).toBe('ready');
  }

  async run(base: number): Promise<Term[]> {
    this.child.stdin!.end(`${base}\n`);
    const terms = JSON.parse(await this.line()) as Term[];
    expect(await this.exited, this.stderr).toBe(0);
    return terms;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

describe('leader lease on a 3-server cluster (R3 lease stream)', () => {
  let nats: TestNats;
  let admin: NatsConnection;
  const contenders: Contender[] = [];
  beforeAll(async () => {
    nats = await TestNats.start({ size: 3 });
    admin = await nats.connect({ role: 'director', id: 'admin' });
    await ensureLeaseStream(admin, 3);
  });
  afterAll(async () => {
    for (const c of contenders) c.kill();
    await nats?.cleanup();
  });

  it('never lets two contenders in separate processes lead at once, racing on different servers', async () => {
    const epochMs = 500;
    const rounds = 4;
    const names = Array.from({ length: 12 }, (_, i) => `race${i}`);
    for (const [i, server] of nats.urls.entries()) {
      const id = await nats.identity({ role: 'director', id: `c${i}` });
      const plan: ContenderPlan = {
        holder: `c${i}`,
        servers: [server],
        tls: id.tls,
        credentials: id.credentials,
        inboxPrefix: id.inboxPrefix,
        names,
        rounds,
        epochMs,
      };
      contenders.push(new Contender(spawnSource(CONTENDER, [], { stdio: 'pipe' }), plan));
    }
    await Promise.all(contenders.map((c) => c.ready()));
    const base = (Math.floor(Date.now() / epochMs) + 2) * epochMs;
    const terms = (await Promise.all(contenders.map((c) => c.run(base)))).flat();

    const races = names.flatMap((n) => Array.from({ length: rounds }, (_, r) => `${n}-r${r}`));
    const overlaps: string[] = [];
    for (const name of races) {
      const of = terms
        .filter((t) => t.name === name)
        .sort((x, y) => (BigInt(x.start) < BigInt(y.start) ? -1 : 1));
      let latest: Term | undefined;
      for (const t of of) {
        if (latest && BigInt(t.start) < BigInt(latest.end))
          overlaps.push(`${name}: ${latest.holder} until ${latest.end}, ${t.holder} from ${t.start}`);
        if (!latest || BigInt(t.end) > BigInt(latest.end)) latest = t;
      }
    }
    expect(overlaps).toEqual([]);
    // every race elected somebody, and leadership moved to another contender in most of them
    expect(new Set(terms.map((t) => t.name))).toEqual(new Set(races));
    const handedOver = races.filter(
      (n) => new Set(terms.filter((t) => t.name === n).map((t) => t.holder)).size > 1,
    );
    expect(handedOver.length).toBeGreaterThan(races.length / 2);

    // the stream holds one claim per epoch: a second stored claim is a second winner
    const jsm = await jetstreamManager(admin);
    const last = (await jsm.streams.info(LEASE_STREAM)).state.last_seq;
    const claims = new Map<string, string[]>();
    for (let seq = 1; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(LEASE_STREAM, { seq });
      if (m) claims.set(m.subject, [...(claims.get(m.subject) ?? []), m.string()]);
    }
    expect([...claims].filter(([, holders]) => holders.length > 1)).toEqual([]);
    expect(claims.size).toBeGreaterThanOrEqual(races.length * 2);
  }, 120_000);
});
