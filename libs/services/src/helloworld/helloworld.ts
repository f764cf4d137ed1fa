import { z } from 'zod';
import { agentMethod, defineService, managerMethod } from '../contract/service.js';

/**
 * The tutorial service (see docs/plugin-guide.md): one role, one method. The manager asks every
 * agent for its greeting.
 */
export const helloworldService = defineService({
  type: 'helloworld',
  description: 'The smallest service: each node says hello',
  roles: ['node'],
  defaultRoles: { node: 1 },
  configSchema: z.object({ greeting: z.string().min(1).max(100).default('Hello') }),
  manifestKeys: z.object({}),
  manager: {
    methods: {
      get_helloworld: managerMethod({
        description: 'The greeting of every running node',
        args: z.object({}),
        result: z.object({ messages: z.array(z.object({ nodeId: z.string(), message: z.string() })) }),
        handle: async (ctx) => {
          const running = ctx.nodes().filter((n) => n.state === 'running');
          const replies = await Promise.all(
            running.map((n) => ctx.callAgent(n.nodeId, 'get_helloworld', {})),
          );
          return {
            messages: replies.map((r, i) => ({
              nodeId: running[i]!.nodeId,
              message: (r as { message: string }).message,
            })),
          };
        },
      }),
    },
  },
  agent: {
    methods: {
      get_helloworld: agentMethod({
        description: 'This node’s greeting',
        args: z.object({}),
        result: z.object({ message: z.string() }),
        handle: (ctx) => ({ message: `Hello from ${ctx.nodeId}` }),
      }),
    },
  },
});
