import { ValidationError, type Identity } from '@cps/core';
import { EVENT_STREAM, SNAPSHOT_BUCKET, subjects } from '../subjects.js';

/** NATS publish/subscribe allow and deny lists of one bus identity. */
export interface BusPermissions {
  readonly pub: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly sub: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  /** May publish one reply to each request it received (for responders). */
  readonly respond: boolean;
}

const JS = '$JS.API';

/**
 * The JetStream API subjects one aggregate's single writer needs, and nothing wider: append to its
 * own subject, read it through a consumer whose filter is named in the API subject, read its last
 * event and its snapshot by subject. Stream administration, foreign consumers and payload-addressed
 * reads are not allowed.
 */
export const aggregateWriterSubjects = (eventSubject: string, snapshotKey: string): string[] => [
  eventSubject,
  `${JS}.CONSUMER.CREATE.${EVENT_STREAM}.*.${eventSubject}`,
  `${JS}.DIRECT.GET.${EVENT_STREAM}.${eventSubject}`,
  `${JS}.DIRECT.GET.KV_${SNAPSHOT_BUCKET}.$KV.${SNAPSHOT_BUCKET}.${snapshotKey}`,
  `$KV.${SNAPSHOT_BUCKET}.${snapshotKey}`,
];

const requireIds = (i: Identity, ...fields: ('appId' | 'serviceId' | 'nodeId')[]): string[] =>
  fields.map((f) => {
    const v = i[f];
    if (v === undefined)
      throw new ValidationError(`a ${i.role} identity needs ${f}`, [
        { path: `$.${f}`, code: 'required', message: 'required' },
      ]);
    return v;
  });

/** Least-privilege permissions of a bus identity, derived from the identity alone. */
export const permissionsFor = (identity: Identity): BusPermissions => {
  const inbox = `${subjects.inbox(identity)}.>`;
  const renew = subjects.renewal(identity);
  switch (identity.role) {
    case 'director':
      return {
        pub: { allow: ['>'], deny: ['$SYS.>'] },
        sub: { allow: ['>'], deny: ['$SYS.>', '_INBOX.manager.>', '_INBOX.agent.>'] },
        respond: true,
      };
    case 'manager': {
      const [app, svc] = requireIds(identity, 'appId', 'serviceId') as [string, string];
      const self = subjects.manager(app, svc);
      return {
        pub: {
          allow: [
            `cps.agt.${app}.${svc}.>`,
            `cps.log.${app}.${svc}.>`,
            renew,
            'cps.sys.node.>',
            ...aggregateWriterSubjects(subjects.events('svc', app, svc), `svc.${app}.${svc}`),
          ],
          deny: [],
        },
        sub: {
          allow: [
            inbox,
            `${self}.>`,
            `cps.node.${app}.${svc}.>`,
            '$SRV.*',
            `$SRV.*.cps-manager`,
            `$SRV.*.cps-manager.*`,
          ],
          deny: [],
        },
        respond: true,
      };
    }
    case 'agent': {
      const [app, svc, node] = requireIds(identity, 'appId', 'serviceId', 'nodeId') as [
        string,
        string,
        string,
      ];
      return {
        pub: { allow: [`${subjects.fromNode(app, svc, node)}.>`, renew], deny: ['$JS.>', '$KV.>', '$SRV.>'] },
        sub: { allow: [inbox, `${subjects.agent(app, svc, node)}.>`], deny: [] },
        respond: true,
      };
    }
    case 'user':
    case 'admin':
    case 'server':
      throw new ValidationError(`role ${identity.role} never connects to the bus`, [
        { path: '$.role', code: 'not_a_bus_role', message: 'not a bus role' },
      ]);
  }
};
