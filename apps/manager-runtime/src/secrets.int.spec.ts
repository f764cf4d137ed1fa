import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { deriveSecret, hasErrorCode, newSealingKeyMaterial, seal, sealingKeyFrom, unseal } from '@cps/core';
import { Bus, subjects, EVENT_STREAM, callMethod } from '@cps/bus';
import { EventCatalog, ensureEventStream, JetStreamEventStore } from '@cps/events';
import { defineService, managerMethod, secret } from '@cps/services';
import { TestNats } from '@cps/testing';
import { serviceEvents } from '@cps/services';
import { ManagerRuntime, type SecretSealer } from './runtime/manager-runtime.js';

const PASSWORD = 'correct-horse-battery-staple';
const vault = defineService({
  type: 'vault',
  description: 'test plugin with a secret in its config',
  roles: ['node'],
  defaultRoles: { node: 1 },
  configSchema: z.object({ user: z.string(), password: secret(z.string().min(8)) }),
  manifestKeys: z.object({}),
  manager: {
    methods: {
      whoami: managerMethod({
        description: 'what the plugin sees',
        args: z.object({}),
        result: z.object({ user: z.string(), passwordOk: z.boolean() }),
        states: ['INIT'],
        handle: (ctx) => {
          const c = ctx.config as { user: string; password: string };
          return { user: c.user, passwordOk: c.password === PASSWORD };
        },
      }),
    },
  },
  agent: { methods: {} },
});

describe('secrets never reach the event stream in clear', () => {
  let nats: TestNats;
  beforeAll(async () => {
    nats = await TestNats.start();
    await ensureEventStream(await nats.connect({ role: 'director', id: 'd1' }));
  });
  afterAll(async () => nats.cleanup());

  const runtime = async (
    svc: string,
    secrets?: SecretSealer,
    config: { user: string; password: string } = { user: 'mysqldb', password: PASSWORD },
  ) => {
    const nc = await nats.connect({ role: 'manager', id: svc, appId: 'a1', serviceId: svc });
    return new ManagerRuntime({
      bus: new Bus(nc),
      store: new JetStreamEventStore(nc, { catalog: new EventCatalog(serviceEvents) }),
      service: vault,
      appId: 'a1',
      serviceId: svc,
      config,
      ...(secrets ? { secrets } : {}),
    });
  };

  it('refuses a secret when the manager has no key to seal it with', async () => {
    const m = await runtime('s1');
    await expect(m.start()).rejects.toSatisfy(
      (e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.password',
    );
    await m.stop();
  });

  it('stores only the sealed value; the plugin sees the clear one', async () => {
    const key = sealingKeyFrom(newSealingKeyMaterial());
    const sealer = (svc: string) => ({
      seal: (v: string) => seal(key, v, `svc.a1.${svc}`),
      open: (s: string) => unseal(key, s, `svc.a1.${svc}`).toString(),
      derive: (purpose: string) => deriveSecret(key, `svc.a1.${svc}/${purpose}`),
    });
    const m = await runtime('s2', sealer('s2'));
    await m.start();
    // the positive control: the same secret in a field kept in clear, which the scan must find
    const clear = await runtime('s3', sealer('s3'), { user: PASSWORD, password: 'another-password' });
    await clear.start();
    const director = await nats.bus({ role: 'director', id: 'd2' });
    const r = await director.request(subjects.manager('a1', 's2'), callMethod, {
      method: 'whoami',
      args: {},
    });
    expect(r.result).toEqual({ user: 'mysqldb', passwordOk: true });
    const s2 = await rawEvents(director.connection, 'cps.evt.svc.a1.s2');
    expect(s2.length).toBeGreaterThan(0);
    expect(s2.join('\n')).toContain('mysqldb');
    expect(s2.join('\n')).toContain('cps-sealed:v1:');
    for (const text of s2) expect(text).not.toContain(PASSWORD);
    expect((await rawEvents(director.connection, 'cps.evt.svc.a1.s3')).join('\n')).toContain(PASSWORD);
    await m.stop();
    await clear.stop();
  });
});

/** Every message of `subject` in the event stream, raw; a read that fails fails the scan. */
const rawEvents = async (nc: NatsConnection, subject: string): Promise<string[]> => {
  const jsm = await jetstreamManager(nc);
  const { state } = await jsm.streams.info(EVENT_STREAM);
  const texts: string[] = [];
  let read = 0;
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(EVENT_STREAM, { seq });
    if (!m) continue;
    read++;
    if (m.subject === subject) texts.push(new TextDecoder().decode(m.data));
  }
  expect(read).toBe(state.messages);
  return texts;
};
