import { createHash } from 'node:crypto';
import { ValidationError, type Issue } from '../errors/cps-error.js';
import { ID_PATTERN, Roles, type Identity, type Role } from '../pki/identity.js';

/**
 * What an aggregate id (the key of one aggregate in the event store, and the tail of its subject
 * `cps.evt.<aggregate>`) says, by its type, the first token:
 *
 * | id | aggregate |
 * |---|---|
 * | `user.<userId>` | a user (account, tokens, certificates, credit) |
 * | `app.<appId>` | an application |
 * | `svc.<appId>.<serviceId>` | a service, written by its manager |
 * | `op.<operationId>` | a director operation |
 * | `node.<nodeId>` | a node, recorded by the Provisioner |
 * | `identity.<role>.<id>` | a bus identity (issued, renewed, enrolled, revoked) |
 * | `name.<claim>` | the claim of a unique name in a scope (`claim`: 40 hex digits, see `aggregateIds.name`) |
 */
export type AggregateId =
  | { readonly type: 'user'; readonly userId: string }
  | { readonly type: 'app'; readonly appId: string }
  | { readonly type: 'svc'; readonly appId: string; readonly serviceId: string }
  | { readonly type: 'op'; readonly operationId: string }
  | { readonly type: 'node'; readonly nodeId: string }
  | { readonly type: 'identity'; readonly role: Role; readonly id: string }
  | { readonly type: 'name'; readonly claim: string };
export type AggregateType = AggregateId['type'];

type FieldsOf<T extends AggregateType> = Exclude<keyof Extract<AggregateId, { type: T }>, 'type'>;

/** The fields of each type, in the order they stand in the id. */
const FIELDS: { readonly [T in AggregateType]: readonly FieldsOf<T>[] } = {
  user: ['userId'],
  app: ['appId'],
  svc: ['appId', 'serviceId'],
  op: ['operationId'],
  node: ['nodeId'],
  identity: ['role', 'id'],
  name: ['claim'],
};

const CLAIM = /^[0-9a-f]{40}$/;
const ROLES = new Set<string>(Object.values(Roles));

const issueOf = (field: string, value: string | undefined): Issue | undefined => {
  const path = `$.${field}`;
  if (value === undefined || value === '') return { path, code: 'required', message: 'required' };
  if (field === 'role')
    return ROLES.has(value) ? undefined : { path, code: 'invalid_role', message: 'not a role' };
  if (field === 'claim')
    return CLAIM.test(value)
      ? undefined
      : { path, code: 'invalid_claim', message: `must match ${CLAIM.source}` };
  return ID_PATTERN.test(value)
    ? undefined
    : { path, code: 'invalid_id', message: `must match ${ID_PATTERN.source}` };
};

const refuse = (what: string, issue: Issue): never => {
  throw new ValidationError(`${what}: ${issue.path} ${issue.message}`, [issue]);
};

/** The id of `a`, each field checked (a `validation` error names the first bad one). */
export const formatAggregateId = (a: AggregateId): string => {
  const values = (FIELDS[a.type] as readonly string[]).map((f) => {
    const v = (a as unknown as Record<string, string | undefined>)[f];
    const issue = issueOf(f, v);
    return issue ? refuse(`not a valid ${a.type} aggregate id`, issue) : (v as string);
  });
  return [a.type, ...values].join('.');
};

/**
 * What `aggregate` says, or a `validation` error naming what is wrong: `$.type` for a type cps does
 * not have, `$.<field>` for a missing or malformed field (`$.serviceId` of `svc.a1`), `$.aggregate`
 * for tokens past the last field.
 */
export const parseAggregateId = (aggregate: string): AggregateId => {
  const what = `not an aggregate id: ${JSON.stringify(aggregate)}`;
  const [type, ...tokens] = aggregate.split('.');
  if (!Object.hasOwn(FIELDS, type ?? ''))
    return refuse(what, {
      path: '$.type',
      code: 'unknown_aggregate_type',
      message: `one of ${Object.keys(FIELDS).join(', ')}`,
    });
  const fields = FIELDS[type as AggregateType] as readonly string[];
  if (tokens.length > fields.length)
    return refuse(what, {
      path: '$.aggregate',
      code: 'too_many_parts',
      message: `${type}.<${fields.join('>.<')}>`,
    });
  const parsed: Record<string, string> = { type: type as string };
  fields.forEach((f, i) => {
    const issue = issueOf(f, tokens[i]);
    if (issue) refuse(what, issue);
    parsed[f] = tokens[i] as string;
  });
  return parsed as unknown as AggregateId;
};

/** Like `parseAggregateId`, for readers of the whole stream: undefined for any id cps does not make. */
export const tryParseAggregateId = (aggregate: string): AggregateId | undefined => {
  try {
    return parseAggregateId(aggregate);
  } catch {
    return undefined;
  }
};

/**
 * The scopes names are unique in (the `scope` of `aggregateIds.name`): user names across the
 * platform, application names per owner. Kept in `NameClaimed` events: never change these strings.
 */
export const nameScopes = {
  users: 'user',
  applicationsOf: (owner: string): string => `app.${owner}`,
} as const;

/** The one way cps builds an aggregate id: each builder checks its ids (`validation` naming the field). */
export const aggregateIds = {
  user: (userId: string): string => formatAggregateId({ type: 'user', userId }),
  app: (appId: string): string => formatAggregateId({ type: 'app', appId }),
  service: (appId: string, serviceId: string): string => formatAggregateId({ type: 'svc', appId, serviceId }),
  operation: (operationId: string): string => formatAggregateId({ type: 'op', operationId }),
  node: (nodeId: string): string => formatAggregateId({ type: 'node', nodeId }),
  identity: (i: Pick<Identity, 'role' | 'id'>): string =>
    formatAggregateId({ type: 'identity', role: i.role, id: i.id }),
  /**
   * The claim of `name` within `scope` (see `nameScopes`): one id token whatever the name holds, so
   * racing claimants of one name append to one aggregate.
   */
  name: (scope: string, name: string): string =>
    formatAggregateId({
      type: 'name',
      claim: createHash('sha256').update(`${scope}\u0000${name}`).digest('hex').slice(0, 40),
    }),
} as const;
