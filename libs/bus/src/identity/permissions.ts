import { aggregateIds, ValidationError, type Identity } from '@cps/core';
import { EVENT_STREAM, SNAPSHOT_BUCKET, subjects } from '../subjects.js';

/** NATS publish/subscribe allow and deny lists of one bus identity. */
export interface BusPermissions {
  readonly pub: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  readonly sub: { readonly allow: readonly string[]; readonly deny: readonly string[] };
}

/**
 * Replies are published to the requester's inbox, which the responder's allow-list names
 * explicitly (a manager answers the director, an agent only its own manager). NATS's
 * `allow_responses` is not used: on nats-server 2.9 it tracks every message received with a reply
 * subject, JetStream deliveries included, and slows a long-lived connection down more and more.
 */

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

/**
 * Read-only access to one object-store bucket (the service's code archives): its stream info, its
 * messages by subject, consumers on its own stream (filtered or not) and their flow control. Nothing
 * that writes or reaches another stream.
 */
export const bucketReaderSubjects = (bucket: string): string[] => {
  const stream = `OBJ_${bucket}`;
  return [
    `${JS}.STREAM.INFO.${stream}`,
    `${JS}.STREAM.MSG.GET.${stream}`,
    `${JS}.DIRECT.GET.${stream}`,
    `${JS}.DIRECT.GET.${stream}.>`,
    `${JS}.CONSUMER.CREATE.${stream}`,
    `${JS}.CONSUMER.CREATE.${stream}.>`,
    `${JS}.CONSUMER.INFO.${stream}.*`,
    `${JS}.CONSUMER.DELETE.${stream}.*`,
    `$JS.FC.${stream}.>`,
  ];
};

/**
 * Read and write access to one object-store bucket (a service's own data): what a reader has, plus
 * publishing its chunks and metadata and purging its own stream (replaced and deleted objects).
 */
export const bucketWriterSubjects = (bucket: string): string[] => [
  ...bucketReaderSubjects(bucket),
  `$O.${bucket}.C.>`,
  `$O.${bucket}.M.>`,
  `${JS}.STREAM.PURGE.OBJ_${bucket}`,
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
      };
    case 'manager': {
      const [app, svc] = requireIds(identity, 'appId', 'serviceId') as [string, string];
      const self = subjects.manager(app, svc);
      const aggregate = aggregateIds.service(app, svc);
      return {
        pub: {
          allow: [
            `cps.agt.${app}.${svc}.>`,
            `cps.log.${app}.${svc}.>`,
            '_INBOX.director.>',
            renew,
            `${subjects.provisioner(app, svc)}.>`,
            ...aggregateWriterSubjects(subjects.events(aggregate), aggregate),
            ...bucketReaderSubjects(subjects.archiveBucket(svc)),
            ...bucketWriterSubjects(subjects.dataBucket(svc)),
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
      };
    }
    case 'agent': {
      const [app, svc, node] = requireIds(identity, 'appId', 'serviceId', 'nodeId') as [
        string,
        string,
        string,
      ];
      return {
        pub: {
          allow: [
            `${subjects.fromNode(app, svc, node)}.>`,
            `${subjects.inbox({ role: 'manager', id: svc })}.>`,
            renew,
          ],
          deny: ['$JS.>', '$KV.>', '$SRV.>'],
        },
        sub: { allow: [inbox, `${subjects.agent(app, svc, node)}.>`], deny: [] },
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
