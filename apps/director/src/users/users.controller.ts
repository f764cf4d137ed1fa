import { Controller, Inject } from '@nestjs/common';
import { CpsError } from '@cps/core';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, ClientAddress, Input, Req, Route } from '../api/route.decorator.js';
import { actorOf, commandIdOf, type Principal, type RequestContext } from '../api/request.js';
import type { TokenView, UserView } from '../core/directory.js';
import type { Accounts } from './accounts.js';
import { userRoutes } from './users.routes.js';

type R = typeof userRoutes;

/** Injection token of the {@link Accounts} service. */
export const ACCOUNTS = Symbol('Accounts');
const DAY = 24 * 3600_000;

const user = (u: UserView) => ({
  userId: u.userId,
  username: u.username,
  role: u.role,
  credit: u.credit,
  createdAt: u.createdAt,
});
const token = (t: TokenView) => ({
  tokenId: t.tokenId,
  kind: t.kind,
  name: t.name,
  scopes: [...t.scopes],
  createdAt: t.createdAt,
  expiresAt: t.expiresAt,
  revoked: t.revoked,
});

/** Sessions, the signed-in user, users (admins) and API tokens. */
@Controller()
export class UsersController {
  constructor(@Inject(ACCOUNTS) private readonly accounts: Accounts) {}

  @Route(userRoutes.login)
  async login(
    @Input() i: RouteInput<R['login']>,
    @Req() c: RequestContext,
    @ClientAddress() address: string,
  ): Promise<RouteOutput<R['login']>> {
    const s = await this.accounts.login(i.body.username, i.body.password, commandIdOf(c, 'login'), address);
    return { ...s, user: user(s.user) };
  }

  @Route(userRoutes.logout)
  async logout(@Caller() p: Principal, @Req() c: RequestContext): Promise<void> {
    if (!p.tokenId) throw new CpsError('conflict', 'this request was not signed with a token');
    await this.accounts.revokeToken(p, p.tokenId, commandIdOf(c, 'logout'));
  }

  @Route(userRoutes.me)
  me(@Caller() p: Principal): RouteOutput<R['me']> {
    return user(this.accounts.view(p.userId));
  }

  @Route(userRoutes.listUsers)
  list(): RouteOutput<R['listUsers']> {
    return { users: this.accounts.all().map(user) };
  }

  @Route(userRoutes.register)
  async register(
    @Input() i: RouteInput<R['register']>,
    @Caller() p: Principal | undefined,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['register']>> {
    return user(await this.accounts.register(p, i.body, commandIdOf(c, 'register')));
  }

  @Route(userRoutes.getUser)
  get(@Input() i: RouteInput<R['getUser']>, @Caller() p: Principal): RouteOutput<R['getUser']> {
    return user(this.accounts.find(p, i.params.user));
  }

  @Route(userRoutes.grantCredit)
  async credit(
    @Input() i: RouteInput<R['grantCredit']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['grantCredit']>> {
    const target = this.accounts.find(p, i.params.user);
    return user(
      await this.accounts.grantCredit(
        p,
        target.userId,
        i.body.amount,
        i.body.reason,
        commandIdOf(c, 'credit'),
      ),
    );
  }

  @Route(userRoutes.listTokens)
  tokens(@Caller() p: Principal): RouteOutput<R['listTokens']> {
    return { tokens: this.accounts.tokensOf(p.userId).map(token) };
  }

  @Route(userRoutes.createToken)
  async createToken(
    @Input() i: RouteInput<R['createToken']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['createToken']>> {
    if (i.body.scopes.includes('admin') && p.role !== 'admin')
      throw new CpsError('forbidden', 'only admins grant the admin scope');
    const t = await this.accounts.createToken(
      p.userId,
      { kind: 'api', name: i.body.name, scopes: i.body.scopes, ttlMs: i.body.ttlDays * DAY },
      commandIdOf(c, 'token'),
      actorOf(c),
    );
    return { ...token(t.view), token: t.token };
  }

  @Route(userRoutes.revokeToken)
  async revokeToken(
    @Input() i: RouteInput<R['revokeToken']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<void> {
    await this.accounts.revokeToken(p, i.params.id, commandIdOf(c, 'revoke-token'));
  }
}
