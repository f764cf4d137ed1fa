import { InMemoryEventStore } from '@cps/events';
import { eventStoreContract } from '@cps/testing';

eventStoreContract('in-memory', () => {
  const store = new InMemoryEventStore();
  return Promise.resolve({ store, other: store, cleanup: () => Promise.resolve() });
});
