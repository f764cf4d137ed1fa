import { createInterface } from 'node:readline';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectBus, type TlsMaterial } from '@cps/bus';
import { Lease } from './lease.js';

/**
 * What the test hands a contender process, as one line of JSON on stdin; the contender answers
 * `ready` once connected, then takes `base` as a second line.
 */
export interface ContenderPlan {
  readonly holder: string;
  readonly servers: string[];
  readonly tls: TlsMaterial;
  readonly credentials: { readonly jwt: string; readonly seed: string };
  readonly inboxPrefix: string;
  /** One lease per name and round (`<name>-r<round>`), each a fresh race. */
  readonly names: string[];
  readonly rounds: number;
  readonly epochMs: number;
}

/**
 * One term of one holder, from the lease's `onChange(true)` to its `onChange(false)` (what a
 * director acts on), in ns of CLOCK_MONOTONIC (process.hrtime): every process of a host reads the
 * same clock, so terms of different processes compare directly.
 */
export interface Term {
  readonly name: string;
  readonly holder: string;
  readonly start: string;
  readonly end: string;
}

/** Rounds are 3 epochs long (see `round`). */
const ROUND_EPOCHS = 3;

const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));

/**
 * One round of one lease name: every contender starts at the same instant, a fifth of the way
 * into an epoch (all claim it at once); whoever leads steps down before it would claim a third
 * epoch (the others race again for it); everybody stops before the round ends.
 */
const round = async (nc: NatsConnection, plan: ContenderPlan, name: string, at: number): Promise<Term[]> => {
  const terms: Term[] = [];
  let start: bigint | undefined;
  const lease = new Lease(nc, {
    name,
    holder: plan.holder,
    epochMs: plan.epochMs,
    onChange: (leading) => {
      if (leading) start = process.hrtime.bigint();
      else if (start !== undefined) {
        terms.push({ name, holder: plan.holder, start: String(start), end: String(process.hrtime.bigint()) });
        start = undefined;
      }
    },
  });
  const e = plan.epochMs;
  await sleepUntil(at + 0.25 * e);
  lease.start();
  await sleepUntil(at + 1.4 * e);
  if (lease.leading) await lease.stop();
  else {
    await sleepUntil(at + 2.6 * e);
    await lease.stop();
  }
  return terms;
};

/** `base`: wall-clock ms of an epoch boundary; round r starts 3r epochs after it. */
const contend = async (nc: NatsConnection, plan: ContenderPlan, base: number): Promise<Term[]> => {
  const rounds = Array.from({ length: plan.rounds }, (_, r) =>
    plan.names.map((name) => round(nc, plan, `${name}-r${r}`, base + r * ROUND_EPOCHS * plan.epochMs)),
  );
  return (await Promise.all(rounds.flat())).flat();
};

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const line = async (): Promise<string> => {
  const l = await lines.next();
  if (l.done) throw new Error('stdin ended');
  return l.value;
};

const plan = JSON.parse(await line()) as ContenderPlan;
const nc = await connectBus({
  servers: plan.servers,
  tls: plan.tls,
  credentials: plan.credentials,
  inboxPrefix: plan.inboxPrefix,
  name: `director:${plan.holder}`,
});
await nc.flush();
process.stdout.write('ready\n');
const terms = await contend(nc, plan, Number(await line()));
await nc.close();
process.stdout.write(JSON.stringify(terms));
