import type { DirectorFeature } from '../feature.js';

/**
 * Credit (ConPaaS's): one credit per node-hour. The Provisioner asks `Credit` before it records a
 * node (credit left, the node quota); the leader charges running nodes periodically and stops the
 * applications of users left without credit. Admins grant credit through the users' routes.
 */
export const creditFeature: DirectorFeature = {
  name: 'credit',
  routes: {},
  create: (ctx) => ({
    controllers: [],
    providers: [],
    leading: () => {
      const charger = setInterval(() => {
        void ctx.credit.charge(ctx.applications, ctx.applicationOperations, ctx.log);
      }, ctx.every.chargeMs);
      return { stop: () => clearInterval(charger) };
    },
  }),
};
