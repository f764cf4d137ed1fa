import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Director } from '../director.js';
import { DirectorHarness, type Client } from '../director.spec-helpers.js';

/**
 * A question reaches a manager that dies before it answers (frozen, then killed with -9): the
 * director asks the re-created manager soon, instead of waiting out its whole answer time.
 */
describe('a read asked of a manager at the moment it dies', () => {
  let h: DirectorHarness;
  let d: Director;
  let alice: Client;
  let svc: string;

  beforeAll(async () => {
    h = await DirectorHarness.start();
    d = await h.leadingDirector();
    alice = await h.user(d, 'alice');
    svc = await h.startedService(alice, 'reads', 'helloworld', 'hello');
  });
  afterAll(async () => h?.cleanup());

  it('is answered by the re-created manager well within the answer time of 30 s', async () => {
    const manager = (await h.cloud.list()).find((n) => n.kind === 'manager')!;
    const pid = Number(manager.instanceId);
    process.kill(pid, 'SIGSTOP');
    const t0 = Date.now();
    const asked = alice.get(`${svc}/nodes`);
    // delivered to the frozen manager, which dies without answering
    await new Promise((r) => setTimeout(r, 500));
    process.kill(pid, 'SIGKILL');
    const r = await asked;
    const ms = Date.now() - t0;
    expect(r.status, r.text).toBe(200);
    expect((r.body.nodes as { state: string }[]).some((n) => n.state === 'running')).toBe(true);
    expect(ms).toBeLessThan(20_000);
    const now = (await h.cloud.list()).find((n) => n.kind === 'manager')!;
    expect(now.instanceId).not.toBe(manager.instanceId);
  });
});
