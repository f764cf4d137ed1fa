import { z } from 'zod';
import { CpsError, NotFoundError } from '@cps/core';
import type { AnyAgentMethod, AnyManagerMethod, ServiceDefinition } from './service.js';

/** What the registry tells about one method: enough to build a REST route or a CLI command. */
export interface MethodInfo {
  readonly name: string;
  readonly description: string;
  readonly args: unknown;
  readonly result: unknown;
}

export interface ServiceTypeInfo {
  readonly type: string;
  readonly description: string;
  readonly roles: readonly string[];
  readonly defaultRoles: Readonly<Record<string, number>>;
  /** JSON Schemas of the service's settings and of its type-specific manifest keys. */
  readonly config: unknown;
  readonly manifestKeys: unknown;
  readonly manager: readonly MethodInfo[];
  readonly agent: readonly MethodInfo[];
}

const info = (name: string, m: AnyManagerMethod | AnyAgentMethod): MethodInfo => ({
  name,
  description: m.description,
  args: z.toJSONSchema(m.args, { io: 'input', unrepresentable: 'any' }),
  result: z.toJSONSchema(m.result, { unrepresentable: 'any' }),
});

/** The service types of a platform, from an explicit list (no scanning, no side-effect imports). */
export class ServiceRegistry {
  private readonly byType: ReadonlyMap<string, ServiceDefinition>;

  constructor(definitions: readonly ServiceDefinition[]) {
    const m = new Map<string, ServiceDefinition>();
    for (const d of definitions) {
      if (m.has(d.type)) throw new CpsError('conflict', `service type ${d.type} registered twice`);
      m.set(d.type, d);
    }
    this.byType = m;
  }

  has(type: string): boolean {
    return this.byType.has(type);
  }

  types(): string[] {
    return [...this.byType.keys()].sort();
  }

  get(type: string): ServiceDefinition {
    const d = this.byType.get(type);
    if (!d)
      throw new NotFoundError(
        `unknown service type ${JSON.stringify(type)}; known: ${this.types().join(', ')}`,
      );
    return d;
  }

  describe(type: string): ServiceTypeInfo {
    const d = this.get(type);
    return {
      type: d.type,
      description: d.description,
      roles: d.roles,
      defaultRoles: d.defaultRoles as Record<string, number>,
      config: z.toJSONSchema(d.configSchema, { io: 'input', unrepresentable: 'any' }),
      manifestKeys: z.toJSONSchema(d.manifestKeys, { io: 'input', unrepresentable: 'any' }),
      manager: Object.entries(d.manager.methods).map(([n, m]) => info(n, m)),
      agent: Object.entries(d.agent.methods).map(([n, m]) => info(n, m)),
    };
  }

  managerMethod(type: string, name: string): AnyManagerMethod {
    const m = this.get(type).manager.methods[name];
    if (!m) throw new NotFoundError(`service type ${type} has no manager method ${name}`);
    return m;
  }

  agentMethod(type: string, name: string): AnyAgentMethod {
    const m = this.get(type).agent.methods[name];
    if (!m) throw new NotFoundError(`service type ${type} has no agent method ${name}`);
    return m;
  }
}
