import { z } from 'zod';
import { IdSchema, type Command, type Decider, ConflictError, NotFoundError } from '@cps/core';
import { defineEvent, type EventOf } from '@cps/events';

/**
 * The director's own long operations (start or stop a service with its manager, deploy a
 * manifest, delete an application): aggregate `op.<operationId>`. Operations a manager runs
 * (add_nodes, ...) are the service's events; the read model shows both the same way.
 */
export const OperationRequested = defineEvent(
  'OperationRequested',
  z.object({
    operationId: IdSchema,
    kind: z.string(),
    owner: IdSchema,
    appId: IdSchema.optional(),
    serviceId: IdSchema.optional(),
    /** What the saga needs to resume after a restart. */
    input: z.unknown().optional(),
    /** The director process that runs it (its presence key): another takes over only once it is gone. */
    runner: z.string().max(100).optional(),
  }),
);
export const OperationProgressed = defineEvent(
  'OperationProgressed',
  z.object({ step: z.string().max(200) }),
);
export const OperationSucceeded = defineEvent(
  'OperationSucceeded',
  z.object({ result: z.unknown().optional() }),
);
export const OperationFailedEvent = defineEvent(
  'DirectorOperationFailed',
  z.object({ reason: z.string().max(2000) }),
);

export const operationEvents = [
  OperationRequested,
  OperationProgressed,
  OperationSucceeded,
  OperationFailedEvent,
];
export type OperationEvent =
  | EventOf<typeof OperationRequested>
  | EventOf<typeof OperationProgressed>
  | EventOf<typeof OperationSucceeded>
  | EventOf<typeof OperationFailedEvent>;

export type OperationState =
  | { readonly status: 'NONE' }
  | {
      readonly status: 'running' | 'succeeded' | 'failed';
      readonly operationId: string;
      readonly kind: string;
      readonly owner: string;
      readonly appId?: string;
      readonly serviceId?: string;
      readonly input?: unknown;
      readonly runner?: string;
      readonly steps: readonly string[];
    };

export type OperationCommand =
  | Command<'Request', z.infer<typeof OperationRequested.schema>>
  | Command<'Progress', { step: string }>
  | Command<'Succeed', { result?: unknown }>
  | Command<'Fail', { reason: string }>;

export const operationDecider: Decider<OperationCommand, OperationEvent, OperationState> = {
  initialState: () => ({ status: 'NONE' }),
  evolve: (s, e) => {
    if (e.type === 'OperationRequested') return { status: 'running', ...e.data, steps: [] };
    if (s.status === 'NONE') return s;
    if (e.type === 'OperationProgressed') return { ...s, steps: [...s.steps, e.data.step] };
    return { ...s, status: e.type === 'OperationSucceeded' ? 'succeeded' : 'failed' };
  },
  decide: (c, s) => {
    if (c.type === 'Request') {
      if (s.status !== 'NONE') return [];
      return [{ type: 'OperationRequested', data: c.data }];
    }
    if (s.status === 'NONE') throw new NotFoundError('no such operation');
    if (s.status !== 'running') {
      if (c.type === 'Progress') throw new ConflictError(`operation ${s.operationId} is over`);
      return [];
    }
    switch (c.type) {
      case 'Progress':
        return [{ type: 'OperationProgressed', data: c.data }];
      case 'Succeed':
        return [{ type: 'OperationSucceeded', data: c.data }];
      case 'Fail':
        return [{ type: 'DirectorOperationFailed', data: c.data }];
    }
  },
};
