import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { defineEvent, type EventOf } from '@cps/events';

/** The Provisioner's record of one node: aggregate `node.<nodeId>`. */
export const NodeRecorded = defineEvent(
  'NodeRecorded',
  z.object({
    nodeId: IdSchema,
    kind: z.enum(['manager', 'agent']),
    appId: IdSchema,
    serviceId: IdSchema,
    role: IdSchema.optional(),
    serviceType: IdSchema.optional(),
    cloud: z.string().min(1).max(64),
  }),
);
export const NodeProvisioned = defineEvent(
  'NodeProvisioned',
  z.object({
    instanceId: z.string(),
    address: z.string().optional(),
    ports: z.object({ from: z.number().int(), to: z.number().int() }).optional(),
    recreated: z.boolean().default(false),
    /** Started again with its disk (a stopped node of a cloud that keeps them). */
    restarted: z.boolean().default(false),
  }),
);
export const NodeProvisionFailed = defineEvent(
  'NodeProvisionFailed',
  z.object({ reason: z.string().max(1000) }),
);
export const NodeDestroyRequested = defineEvent(
  'NodeDestroyRequested',
  z.object({ reason: z.string().max(200) }),
);
export const NodeDestroyed = defineEvent('NodeDestroyed', z.object({}));

export const nodeEvents = [
  NodeRecorded,
  NodeProvisioned,
  NodeProvisionFailed,
  NodeDestroyRequested,
  NodeDestroyed,
];

export type NodeEvent =
  | EventOf<typeof NodeRecorded>
  | EventOf<typeof NodeProvisioned>
  | EventOf<typeof NodeProvisionFailed>
  | EventOf<typeof NodeDestroyRequested>
  | EventOf<typeof NodeDestroyed>;

export interface NodeRecord {
  readonly nodeId: string;
  readonly kind: 'manager' | 'agent';
  readonly appId: string;
  readonly serviceId: string;
  readonly role?: string;
  readonly serviceType?: string;
  readonly cloud: string;
  readonly status: 'recorded' | 'provisioned' | 'failed' | 'destroying' | 'destroyed';
  readonly instanceId?: string;
  readonly address?: string;
  readonly ports?: { readonly from: number; readonly to: number };
}

/** Folds one node's events (the Provisioner's read model and its decisions share it). */
export const evolveNode = (r: NodeRecord | undefined, e: NodeEvent): NodeRecord | undefined => {
  if (e.type === 'NodeRecorded') return { ...e.data, status: 'recorded' };
  if (!r) return r;
  switch (e.type) {
    case 'NodeProvisioned':
      return {
        ...r,
        status: 'provisioned',
        instanceId: e.data.instanceId,
        ...(e.data.address ? { address: e.data.address } : {}),
        ...(e.data.ports ? { ports: e.data.ports } : {}),
      };
    case 'NodeProvisionFailed':
      return { ...r, status: 'failed' };
    case 'NodeDestroyRequested':
      return { ...r, status: 'destroying' };
    case 'NodeDestroyed':
      return { ...r, status: 'destroyed' };
  }
};
