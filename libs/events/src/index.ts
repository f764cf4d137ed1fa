export type {
  AggregateRead,
  AppendOptions,
  AppendResult,
  EventMetadata,
  EventStore,
  ExpectedVersion,
  NewEvent,
  Position,
  RecordedEvent,
  Subscription,
} from './store/types.js';
export { InMemoryEventStore } from './store/memory.js';
export {
  JetStreamEventStore,
  ensureEventStream,
  ensureLogStream,
  type JetStreamStoreOptions,
} from './store/jetstream.js';
export type { StoreOptions } from './store/prepare.js';
export { defineEvent, EventCatalog, type EventDefinition, type EventOf } from './catalog/catalog.js';
export {
  CommandHandler,
  type CommandHandlerOptions,
  type HandleResult,
  type Loaded,
} from './handling/command-handler.js';
export {
  ProjectionRunner,
  InMemoryCheckpoints,
  type CheckpointStore,
  type Projection,
} from './projections/runner.js';
export {
  InMemoryProjectionSnapshots,
  ObjectStoreProjectionSnapshots,
  PROJECTION_BUCKET,
  ProjectionSnapshotter,
  type ProjectionSnapshot,
  type SnapshottableProjection,
  type ProjectionSnapshotStore,
} from './projections/projection-snapshots.js';
export {
  InMemorySnapshotStore,
  KvSnapshotStore,
  ensureSnapshotBucket,
  type Snapshot,
  type SnapshotStore,
} from './snapshots/snapshots.js';
