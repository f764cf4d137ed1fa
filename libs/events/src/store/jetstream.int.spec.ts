import { ensureEventStream, JetStreamEventStore } from '@cps/events';
import { eventStoreContract, TestNats } from '@cps/testing';

eventStoreContract('JetStream, one server', async () => {
  const nats = await TestNats.start();
  const a = await nats.connect({ role: 'director', id: 'd1' });
  const b = await nats.connect({ role: 'director', id: 'd2' });
  await ensureEventStream(a);
  return {
    store: new JetStreamEventStore(a),
    other: new JetStreamEventStore(b),
    cleanup: () => nats.cleanup(),
  };
});
