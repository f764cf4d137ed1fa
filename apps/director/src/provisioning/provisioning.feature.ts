import type { DirectorFeature } from '../feature.js';
import { PROVISIONING, ProvisioningController } from './provisioning.controller.js';
import { Provisioning } from './provisioning.js';
import { provisioningRoutes } from './provisioning.routes.js';

/**
 * Provisioning: the clouds, the caller's nodes and their cost, the enrollment of cloud nodes. On the
 * leader, the Provisioner (its records reloaded first, so it adopts the managers and nodes it finds)
 * and the reconciler, at once and then periodically.
 */
export const provisioningFeature: DirectorFeature = {
  name: 'provisioning',
  routes: provisioningRoutes,
  create: (ctx) => ({
    controllers: [ProvisioningController],
    providers: [
      {
        provide: PROVISIONING,
        useValue: new Provisioning(ctx.core, ctx.issuer, {
          clouds: ctx.provisioner.cloudList,
        }),
      },
    ],
    leading: async () => {
      await ctx.provisioner.load();
      const served = ctx.provisioner.serve(ctx.bus);
      await ctx.bus.flush();
      const reconcile = (agents: 'revive' | 'leave'): void =>
        void ctx.provisioner
          .reconcile({ agents })
          .catch((e: unknown) => ctx.log.warn({ err: e }, 'reconcile failed'));
      // at once: after a restart of the platform, its managers and nodes come back now, not a period
      // later; from then on a dead agent is its running manager's to fail and replace
      reconcile('revive');
      const timer = setInterval(() => reconcile('leave'), ctx.every.reconcileMs);
      return {
        stop: async () => {
          clearInterval(timer);
          await served.stop();
        },
      };
    },
  }),
};
