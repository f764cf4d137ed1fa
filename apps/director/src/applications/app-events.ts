import { z } from 'zod';
import { IdSchema } from '@cps/core';
import { VolumeMountSchema } from '@cps/bus';
import { defineEvent, type EventOf } from '@cps/events';

export const ApplicationCreated = defineEvent(
  'ApplicationCreated',
  z.object({ appId: IdSchema, owner: IdSchema, name: z.string(), description: z.string() }),
);
export const ApplicationRenamed = defineEvent('ApplicationRenamed', z.object({ name: z.string() }));
export const ApplicationDescribed = defineEvent(
  'ApplicationDescribed',
  z.object({ description: z.string() }),
);
/** `config` holds secret fields sealed (see the service type's schema): never in clear. */
export const ServiceAdded = defineEvent(
  'ServiceAdded',
  z.object({
    serviceId: IdSchema,
    name: z.string(),
    type: IdSchema,
    cloud: z.string(),
    config: z.unknown(),
    links: z.record(IdSchema, IdSchema).optional(),
    manifest: z.record(z.string(), z.unknown()).optional(),
    /** The volumes of linked storage services its nodes mount. */
    volumes: z.array(VolumeMountSchema).optional(),
  }),
);
export const ServiceRenamed = defineEvent(
  'ServiceRenamed',
  z.object({ serviceId: IdSchema, name: z.string() }),
);
export const ServiceRemoved = defineEvent('ServiceRemoved', z.object({ serviceId: IdSchema }));
export const ApplicationDeleted = defineEvent('ApplicationDeleted', z.object({}));

export const appEvents = [
  ApplicationCreated,
  ApplicationRenamed,
  ApplicationDescribed,
  ServiceAdded,
  ServiceRenamed,
  ServiceRemoved,
  ApplicationDeleted,
];

export type AppEvent =
  | EventOf<typeof ApplicationCreated>
  | EventOf<typeof ApplicationRenamed>
  | EventOf<typeof ApplicationDescribed>
  | EventOf<typeof ServiceAdded>
  | EventOf<typeof ServiceRenamed>
  | EventOf<typeof ServiceRemoved>
  | EventOf<typeof ApplicationDeleted>;
