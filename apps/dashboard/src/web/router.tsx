import { lazy, Suspense, type ReactNode } from 'react';
import { createRootRoute, createRoute, createRouter, Link, Outlet } from '@tanstack/react-router';
import { LiveProvider, useLive } from './live.js';
import { useSession } from './session.js';
import { SignInPage } from './pages/sign-in.js';
import { AppsPage } from './pages/apps.js';
import { AppPage } from './pages/app.js';
import { EventsPage } from './pages/events.js';
import { AccountPage } from './pages/account.js';
import { AdminPage } from './pages/admin.js';

/** The service page carries the generated forms and the charts: loaded when first opened. */
const ServicePage = lazy(() => import('./pages/service.js'));

/** The banner of a cut stream: what is shown may be late until it is back. */
const StreamBanner = (): ReactNode => {
  const { state } = useLive();
  if (state.kind !== 'cut') return null;
  return (
    <div role="status" className="banner">
      Live updates are cut; reconnecting{state.attempt > 1 ? ` (attempt ${state.attempt})` : ''}. What you see
      may be out of date until they are back.
    </div>
  );
};

const Layout = (): ReactNode => {
  const { session, signOut } = useSession();
  if (!session) return <SignInPage />;
  return (
    <LiveProvider>
      <header>
        <nav aria-label="main">
          <Link to="/" className="brand">
            cps
          </Link>
          <Link to="/">Applications</Link>
          <Link to="/events">Events</Link>
          <Link to="/account">Account</Link>
          {session.user.role === 'admin' && <Link to="/admin">Users</Link>}
        </nav>
        <span className="who">
          {session.user.username}{' '}
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </span>
      </header>
      <StreamBanner />
      <main>
        <Suspense fallback={<p aria-busy="true">Loading…</p>}>
          <Outlet />
        </Suspense>
      </main>
    </LiveProvider>
  );
};

const NotFound = (): ReactNode => (
  <main>
    <h1>Page not found</h1>
    <p>
      <Link to="/">Back to your applications</Link>
    </p>
  </main>
);

const root = createRootRoute({ component: Layout, notFoundComponent: NotFound });
const apps = createRoute({ getParentRoute: () => root, path: '/', component: AppsPage });
const app = createRoute({ getParentRoute: () => root, path: '/apps/$app', component: AppPage });
const service = createRoute({
  getParentRoute: () => root,
  path: '/apps/$app/services/$svc',
  component: ServicePage,
});
const events = createRoute({ getParentRoute: () => root, path: '/events', component: EventsPage });
const account = createRoute({ getParentRoute: () => root, path: '/account', component: AccountPage });
const admin = createRoute({ getParentRoute: () => root, path: '/admin', component: AdminPage });
const routeTree = root.addChildren([apps, app, service, events, account, admin]);

export const router = createRouter({ routeTree });

declare module '@tanstack/react-router' {
  interface Register {
    router: typeof router;
  }
}
