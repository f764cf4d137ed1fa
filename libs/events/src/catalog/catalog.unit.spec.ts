import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hasErrorCode } from '@cps/core';
import { defineEvent, EventCatalog, InMemoryEventStore } from '@cps/events';

// v1 stored {name}; v2 split it into {first, last}
const UserRenamed = defineEvent('UserRenamed', z.object({ first: z.string(), last: z.string() }), {
  version: 2,
  upcasters: {
    1: (d) => {
      const [first = '', last = ''] = String((d as { name: string }).name).split(' ');
      return { first, last };
    },
  },
});
const meta = { actor: 't', correlationId: 'c', causationId: 'r' };

describe('event catalog', () => {
  const catalog = new EventCatalog([UserRenamed]);
  const store = new InMemoryEventStore({ catalog });

  it('validates on append and names the offending path', async () => {
    await expect(
      store.append('user.u1', [{ type: 'UserRenamed', data: { first: 'a' } }], {
        expectedVersion: 0,
        metadata: meta,
      }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'validation') && e.issues[0]?.path === '$.last');
    await expect(
      store.append('user.u1', [{ type: 'Nope', data: {} }], { expectedVersion: 0, metadata: meta }),
    ).rejects.toSatisfy((e) => hasErrorCode(e, 'validation'));
    expect((await store.readAggregate('user.u1')).version).toBe(0);
  });

  it('upcasts stored old versions on read', async () => {
    const raw = new InMemoryEventStore();
    await raw.append('user.u2', [{ type: 'UserRenamed', version: 1, data: { name: 'Ada Lovelace' } }], {
      expectedVersion: 0,
      metadata: meta,
    });
    const [e] = (await raw.readAggregate('user.u2')).events;
    expect(catalog.read(e!)).toMatchObject({ version: 2, data: { first: 'Ada', last: 'Lovelace' } });
    expect(UserRenamed({ first: 'x', last: 'y' })).toEqual({
      type: 'UserRenamed',
      version: 2,
      data: { first: 'x', last: 'y' },
    });
  });

  it('refuses a definition whose upcaster chain has a gap', () => {
    expect(() => defineEvent('X', z.object({}), { version: 3, upcasters: { 1: (d) => d } })).toThrow(
      /upcaster from v2/,
    );
  });
});
