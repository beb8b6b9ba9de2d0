import { Link, Redirect, Route, Switch, useRoute } from 'wouter';
import { AssetsPage } from './pages/Assets';
import { JobDetailPage } from './pages/JobDetail';
import { JobsPage } from './pages/Jobs';
import { OverviewPage } from './pages/Overview';
import { UploadPage } from './pages/Upload';
import { VendorsPage } from './pages/Vendors';
import { SessionProvider, useSession } from './session';

/** The dashboard: sign-in first, then the navigation and the page for the path (src/api/dashboard.ts serves each path). */
export function App() {
  return (
    <SessionProvider>
      <Layout />
    </SessionProvider>
  );
}

function NavLink({ href, children }: { href: string; children: string }) {
  const [active] = useRoute(href === '/jobs' ? '/jobs/*?' : href);
  return (
    <Link href={href} aria-current={active ? 'page' : undefined}>
      {children}
    </Link>
  );
}

function Layout() {
  const { who, signOut } = useSession();
  const admin = who.kind === 'admin';
  return (
    <>
      <header className="top">
        <span className="brand">pixq</span>
        <nav aria-label="Main">
          <NavLink href="/">Overview</NavLink>
          <NavLink href="/jobs">Jobs</NavLink>
          <NavLink href="/upload">Upload</NavLink>
          <NavLink href="/assets">Assets</NavLink>
          {admin && <NavLink href="/vendors">Vendors</NavLink>}
        </nav>
        <span className="who">{admin ? 'admin' : who.vendor.name}</span>
        <button type="button" className="secondary" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main className="page">
        <Switch>
          <Route path="/">
            <OverviewPage />
          </Route>
          <Route path="/jobs">
            <JobsPage />
          </Route>
          <Route path="/jobs/:id">{(params) => <JobDetailPage id={params.id} />}</Route>
          <Route path="/upload">
            <UploadPage />
          </Route>
          <Route path="/assets">
            <AssetsPage />
          </Route>
          <Route path="/vendors">{admin ? <VendorsPage /> : <Redirect to="/" />}</Route>
          <Route path="/sign-in">
            <Redirect to="/" />
          </Route>
          <Route>
            <p>No such page.</p>
          </Route>
        </Switch>
      </main>
    </>
  );
}
