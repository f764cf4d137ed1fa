import { Controller, Inject } from '@nestjs/common';
import { CpsError } from '@cps/core';
import { routes } from '../api/routes.js';
import type { RouteInput, RouteOutput } from '../api/route.js';
import { Caller, ClientAddress, Input, Req, Route } from '../api/route.decorator.js';
import { actorOf, commandIdOf, type Principal, type RequestContext } from '../api/request.js';
import type { Accounts } from '../users/accounts.js';
import type { TokenView, UserView } from '../core/directory.js';
import { ACCOUNTS } from './tokens.js';

type R = typeof routes;
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

  @Route(routes.login)
  async login(
    @Input() i: RouteInput<R['login']>,
    @Req() c: RequestContext,
    @ClientAddress() address: string,
  ): Promise<RouteOutput<R['login']>> {
    const s = await this.accounts.login(i.body.username, i.body.password, commandIdOf(c, 'login'), address);
    return { ...s, user: user(s.user) };
  }

  @Route(routes.logout)
  async logout(@Caller() p: Principal, @Req() c: RequestContext): Promise<void> {
    if (!p.tokenId) throw new CpsError('conflict', 'this request was not signed with a token');
    await this.accounts.revokeToken(p, p.tokenId, commandIdOf(c, 'logout'));
  }

  @Route(routes.me)
  me(@Caller() p: Principal): RouteOutput<R['me']> {
    return user(this.accounts.view(p.userId));
  }

  @Route(routes.listUsers)
  list(): RouteOutput<R['listUsers']> {
    return { users: this.accounts.all().map(user) };
  }

  @Route(routes.register)
  async register(
    @Input() i: RouteInput<R['register']>,
    @Caller() p: Principal | undefined,
    @Req() c: RequestContext,
  ): Promise<RouteOutput<R['register']>> {
    return user(await this.accounts.register(p, i.body, commandIdOf(c, 'register')));
  }

  @Route(routes.getUser)
  get(@Input() i: RouteInput<R['getUser']>, @Caller() p: Principal): RouteOutput<R['getUser']> {
    return user(this.accounts.find(p, i.params.user));
  }

  @Route(routes.grantCredit)
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

  @Route(routes.listTokens)
  tokens(@Caller() p: Principal): RouteOutput<R['listTokens']> {
    return { tokens: this.accounts.tokensOf(p.userId).map(token) };
  }

  @Route(routes.createToken)
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

  @Route(routes.revokeToken)
  async revokeToken(
    @Input() i: RouteInput<R['revokeToken']>,
    @Caller() p: Principal,
    @Req() c: RequestContext,
  ): Promise<void> {
    await this.accounts.revokeToken(p, i.params.id, commandIdOf(c, 'revoke-token'));
  }
}
