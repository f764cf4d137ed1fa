import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { EndpointSchema, LinkSchema, VolumeMountSchema } from '@cps/bus';
import { defineEvent, type EventOf } from '@cps/events';

const Status = z.enum(['INIT', 'PROLOGUE', 'RUNNING', 'ADAPTING', 'EPILOGUE', 'STOPPED', 'ERROR']);
const OperationKind = z.enum(['startup', 'add_nodes', 'remove_nodes', 'shutdown']);
const NodeRequest = z.object({ nodeId: IdSchema, role: IdSchema, cloud: z.string().min(1).max(64) });

export const ServiceCreated = defineEvent(
  'ServiceCreated',
  z.object({
    appId: IdSchema,
    serviceId: IdSchema,
    type: IdSchema,
    config: z.unknown(),
    /** Link name -> the linked service of the same application (absent in older events). */
    links: z.record(IdSchema, IdSchema).optional(),
    /** The type-specific keys of its manifest entry (its `manifestKeys`; secret ones sealed). */
    manifest: z.record(z.string(), z.unknown()).optional(),
    /** The volumes of linked storage services its nodes mount. */
    volumes: z.array(VolumeMountSchema).optional(),
  }),
);
export const ServiceStateChanged = defineEvent(
  'ServiceStateChanged',
  z.object({ from: Status, to: Status, reason: z.string().max(1000) }),
);
export const OperationStarted = defineEvent(
  'OperationStarted',
  z.object({ operationId: z.string(), kind: OperationKind }),
);
export const OperationCompleted = defineEvent('OperationCompleted', z.object({ operationId: z.string() }));
export const OperationFailed = defineEvent(
  'OperationFailed',
  z.object({ operationId: z.string(), reason: z.string().max(1000) }),
);
export const NodeRequested = defineEvent(
  'NodeRequested',
  NodeRequest.extend({ operationId: z.string(), replaces: IdSchema.optional() }),
);
export const NodeStarted = defineEvent(
  'NodeStarted',
  z.object({
    nodeId: IdSchema,
    instanceId: z.string(),
    address: z.string().optional(),
    /** Absent in events recorded before nodes' ports were kept. */
    ports: z.object({ from: z.number().int(), to: z.number().int() }).optional(),
  }),
);
export const NodeReady = defineEvent('NodeReady', z.object({ nodeId: IdSchema }));
export const NodeFailed = defineEvent(
  'NodeFailed',
  z.object({ nodeId: IdSchema, reason: z.string().max(1000) }),
);
export const NodeRemovalRequested = defineEvent(
  'NodeRemovalRequested',
  z.object({ nodeId: IdSchema, operationId: z.string() }),
);
export const NodeRemoved = defineEvent('NodeRemoved', z.object({ nodeId: IdSchema }));
/** The service's code is now this archive of its bucket (the content stays in the object store). */
export const ArchiveSet = defineEvent(
  'ArchiveSet',
  z.object({ version: IdSchema, size: z.number().int().min(0), digest: z.string().regex(/^[0-9a-f]{64}$/) }),
);

const Ports = z.object({ from: z.number().int(), to: z.number().int() });

/** A node's agent came back at another address or port range (a restart of its node). */
export const NodeMoved = defineEvent(
  'NodeMoved',
  z.object({ nodeId: IdSchema, address: z.string().max(253), ports: Ports }),
);
/** What the service exposes under `name` moved (or is gone: `endpoint` absent). */
export const EndpointSet = defineEvent(
  'EndpointSet',
  z.object({ name: IdSchema, endpoint: EndpointSchema.optional() }),
);
/** The services this one links and their endpoints, as the director last told the manager. */
export const LinksSet = defineEvent('LinksSet', z.object({ links: z.record(IdSchema, LinkSchema) }));
/** One event of the plugin's own state (its schema lives in the plugin's folder). */
export const PluginEventRecorded = defineEvent(
  'PluginEventRecorded',
  z.object({ name: IdSchema, data: z.unknown() }),
);

export const serviceEvents = [
  ServiceCreated,
  ServiceStateChanged,
  OperationStarted,
  OperationCompleted,
  OperationFailed,
  NodeRequested,
  NodeStarted,
  NodeReady,
  NodeFailed,
  NodeRemovalRequested,
  NodeRemoved,
  ArchiveSet,
  NodeMoved,
  EndpointSet,
  LinksSet,
  PluginEventRecorded,
];

export type ServiceEvent =
  | EventOf<typeof ServiceCreated>
  | EventOf<typeof ServiceStateChanged>
  | EventOf<typeof OperationStarted>
  | EventOf<typeof OperationCompleted>
  | EventOf<typeof OperationFailed>
  | EventOf<typeof NodeRequested>
  | EventOf<typeof NodeStarted>
  | EventOf<typeof NodeReady>
  | EventOf<typeof NodeFailed>
  | EventOf<typeof NodeRemovalRequested>
  | EventOf<typeof NodeRemoved>
  | EventOf<typeof ArchiveSet>
  | EventOf<typeof NodeMoved>
  | EventOf<typeof EndpointSet>
  | EventOf<typeof LinksSet>
  | EventOf<typeof PluginEventRecorded>;
