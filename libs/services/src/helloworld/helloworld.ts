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
          const answers = await ctx.fanOut(
            ctx
              .nodes()
              .filter((n) => n.state === 'running')
              .map((n) => n.nodeId),
            'get_helloworld',
            {},
          );
          // a node that does not answer is left out
          return {
            messages: answers.flatMap((a) =>
              a.ok ? [{ nodeId: a.nodeId, message: (a.result as { message: string }).message }] : [],
            ),
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
