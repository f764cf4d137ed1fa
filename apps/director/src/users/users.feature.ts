import type { DirectorFeature } from '../feature.js';
import { ACCOUNTS, UsersController } from './users.controller.js';
import { userRoutes } from './users.routes.js';

/**
 * Users and their credentials: sessions (password sign-in, limited per source and per user name),
 * the signed-in user, users and their credit (admins), API tokens. The director authenticates every
 * request with `Accounts`; each user's secret key (`UserKeys`) seals their services' secrets.
 */
export const userFeature: DirectorFeature = {
  name: 'users',
  routes: userRoutes,
  create: (ctx) => ({
    controllers: [UsersController],
    providers: [{ provide: ACCOUNTS, useValue: ctx.accounts }],
  }),
};
