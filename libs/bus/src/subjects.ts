import { ID_PATTERN, parseAggregateId, ValidationError, type Identity } from '@cps/core';

/**
 * Every subject of cps, in one place. Grammar: `cps.<kind>.<app>.<svc>[.<node>].<verb>`; each id
 * is one token (see ID_PATTERN), so every permission is a pattern over ids.
 *
 * | kind | direction | transport |
 * |---|---|---|
 * | `mgr`  | director -> a service's manager (commands) | request/reply |
 * | `agt`  | manager -> one of its agents (commands) | request/reply |
 * | `node` | agent -> its manager (heartbeats, reports) | core publish |
 * | `evt`  | aggregate events | JetStream stream `CPS_EVENTS` |
 * | `log`  | log lines of nodes, written by their manager | JetStream stream `CPS_LOGS` (size-limited) |
 * | `sys`  | platform services hosted by the director (identity issuer, provisioner) | request/reply |
 */
export const Kinds = { mgr: 'mgr', agt: 'agt', node: 'node', evt: 'evt', log: 'log', sys: 'sys' } as const;
export type Kind = (typeof Kinds)[keyof typeof Kinds];

export const EVENT_STREAM = 'CPS_EVENTS';
export const SNAPSHOT_BUCKET = 'cps_snapshots';
export const LOG_STREAM = 'CPS_LOGS';
/** Code archives of one service live in their own object-store bucket: the unit its manager may read. */
export const ARCHIVE_BUCKET_PREFIX = 'cps_archive_';
export const DATA_BUCKET_PREFIX = 'cps_data_';

const VERB = /^[a-z][a-z0-9_]{0,62}$/;

const id = (v: string, what: string): string => {
  if (!ID_PATTERN.test(v)) {
    throw new ValidationError(`${what} is not a valid id: ${JSON.stringify(v)}`, [
      { path: `$.${what}`, code: 'invalid_id', message: `must match ${ID_PATTERN.source}` },
    ]);
  }
  return v;
};

export const verb = (v: string): string => {
  if (!VERB.test(v))
    throw new ValidationError(`not a valid verb: ${JSON.stringify(v)}`, [
      { path: '$.verb', code: 'invalid_verb', message: `must match ${VERB.source}` },
    ]);
  return v;
};

/** A subject prefix that commands are addressed to: `<address>.<verb>`. */
export type Address = string & { readonly __address: unique symbol };
const address = (s: string): Address => s as Address;

export const subjects = {
  /** Commands for the manager of service `svc` of application `app`. */
  manager: (app: string, svc: string): Address => address(`cps.mgr.${id(app, 'app')}.${id(svc, 'svc')}`),
  /** Commands for the agent on node `node` of service `svc`. */
  agent: (app: string, svc: string, node: string): Address =>
    address(`cps.agt.${id(app, 'app')}.${id(svc, 'svc')}.${id(node, 'node')}`),
  /** Messages from node `node` to its manager: `<prefix>.heartbeat`, `<prefix>.report`. */
  fromNode: (app: string, svc: string, node: string): Address =>
    address(`cps.node.${id(app, 'app')}.${id(svc, 'svc')}.${id(node, 'node')}`),
  /** Log lines of one node, kept in the size-limited stream `CPS_LOGS` (never in the event stream). */
  logs: (app: string, svc: string, node: string): string =>
    `cps.log.${id(app, 'app')}.${id(svc, 'svc')}.${id(node, 'node')}`,
  /** Where the manager of `app.svc` asks the Provisioner for nodes: the subject names who asks. */
  provisioner: (app: string, svc: string): Address =>
    address(`cps.sys.node.${id(app, 'app')}.${id(svc, 'svc')}`),
  /**
   * Where a supervisor (a director) asks the Provisioner for the manager process of `app.svc`.
   * Only directors may publish here: a manager can never start a second writer of its own service.
   */
  managerProvisioner: (app: string, svc: string): Address =>
    address(`cps.sys.mgrnode.${id(app, 'app')}.${id(svc, 'svc')}`),
  /** The object-store bucket holding the code archives of service `svc` (service ids are platform-unique). */
  archiveBucket: (svc: string): string => `${ARCHIVE_BUCKET_PREFIX}${id(svc, 'svc')}`,
  /**
   * The object-store bucket a service's manager keeps its own objects in (a mysql service's backups
   * and binary logs): it reads and writes there, and nowhere else.
   */
  dataBucket: (svc: string): string => `${DATA_BUCKET_PREFIX}${id(svc, 'svc')}`,
  /** Platform services (director-hosted). */
  system: (service: string): Address => address(`cps.sys.${id(service, 'service')}`),
  /** Where an identity asks for its own renewal: the subject itself names who asks. */
  renewal: (identity: Pick<Identity, 'role' | 'id'>): string =>
    `cps.sys.identity.renew.${identity.role}.${id(identity.id, 'id')}`,
  /** The event subject of one aggregate, by its id (`aggregateIds` of @cps/core; a malformed one is refused). */
  events: (aggregate: string): string => `cps.evt.${parseAggregateId(aggregate) && aggregate}`,
  /** The inbox prefix of an identity: only it may subscribe below it. */
  inbox: (identity: Pick<Identity, 'role' | 'id'>): string =>
    `_INBOX.${identity.role}.${id(identity.id, 'id')}`,
  command: (to: Address, name: string): string => `${to}.${verb(name)}`,
} as const;

export const ALL_EVENTS = 'cps.evt.>';
/** Every renewal subject (`subjects.renewal` of any identity): where the identity issuer serves. */
export const RENEWAL_SUBJECTS = 'cps.sys.identity.renew.*.*';
