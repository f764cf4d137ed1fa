import { z } from 'zod';
import { CpsError, type Command, type Decider } from '@cps/core';
import { defineEvent, type EventOf } from '@cps/events';

/**
 * Unique names (user names, application names per owner) are claimed by appending to an aggregate
 * keyed by the name (`aggregateIds.name(scope, name)`, the scopes in `nameScopes`): the event store's
 * expected-version check (and message id) lets exactly one of several racing directors win, with no
 * central database.
 */
export const NameClaimed = defineEvent(
  'NameClaimed',
  z.object({ scope: z.string(), name: z.string(), holder: z.string() }),
);
export const NameReleased = defineEvent('NameReleased', z.object({ holder: z.string() }));
export const nameEvents = [NameClaimed, NameReleased];
export type NameEvent = EventOf<typeof NameClaimed> | EventOf<typeof NameReleased>;

export type NameState = { readonly holder?: string };
export type NameCommand =
  Command<'Claim', { scope: string; name: string; holder: string }> | Command<'Release', { holder: string }>;

export const nameDecider: Decider<NameCommand, NameEvent, NameState> = {
  initialState: () => ({}),
  evolve: (s, e) =>
    e.type === 'NameClaimed' ? { holder: e.data.holder } : s.holder === e.data.holder ? {} : s,
  decide: (c, s) => {
    if (c.type === 'Claim') {
      if (s.holder === c.data.holder) return [];
      if (s.holder !== undefined)
        throw new CpsError('name_taken', `${c.data.name} is taken`, [
          { path: '$.name', code: 'name_taken', message: `${c.data.name} is taken` },
        ]);
      return [{ type: 'NameClaimed', data: c.data }];
    }
    return s.holder === c.data.holder ? [{ type: 'NameReleased', data: c.data }] : [];
  },
};
