import { lazy, Suspense } from 'react';
import { createBrowserRouter, Link, Navigate, NavLink, Outlet, RouterProvider, useRouteError } from 'react-router';
import { HealthStrip } from './features/health/HealthStrip';
import { JobsPage } from './features/jobs/components/JobsPage';
import { ErrorState, Loading } from './components/States';
import { TenantEventsProvider } from './features/jobs/hooks/TenantEvents';
import { useSession, useSignOut } from './features/session/hooks';
import { SignInPage } from './features/session/SignInPage';


// The jobs list (the landing page) is in the main chunk; every other page loads on first visit.
// The pipeline editor, the largest, is its own chunk.
const PipelineEditorPage = lazy(() => import('./features/pipelines/components/PipelineEditor'));
const JobPage = lazy(() => import('./features/jobs/components/JobPage').then((m) => ({ default: m.JobPage })));
const SubmitPage = lazy(() => import('./features/submit/SubmitPage').then((m) => ({ default: m.SubmitPage })));
const PipelinesPage = lazy(() => import('./features/pipelines/components/PipelinesPage').then((m) => ({ default: m.PipelinesPage })));
const LibrariesPage = lazy(() => import('./features/libraries/components/LibrariesPage').then((m) => ({ default: m.LibrariesPage })));
const LibraryPage = lazy(() => import('./features/libraries/components/LibraryPage').then((m) => ({ default: m.LibraryPage })));

function Layout() {
  const session = useSession();
  const signOut = useSignOut();
  const signedIn = Boolean(session.data);
  return (
    <TenantEventsProvider enabled={signedIn}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="app-header">
        <Link to="/jobs" className="brand">
          Image pipelines
        </Link>
        {signedIn && (
          <>
            <nav className="nav" aria-label="Main">
              <NavLink to="/jobs">Jobs</NavLink>
              <NavLink to="/submit">Submit</NavLink>
              <NavLink to="/pipelines">Pipelines</NavLink>
              <NavLink to="/libraries">Libraries</NavLink>
            </nav>
            <div className="row">
              <span className="muted hide-narrow">{session.data?.tenant_name}</span>
              <button type="button" onClick={() => signOut.mutate()} disabled={signOut.isPending}>
                Sign out
              </button>
            </div>
          </>
        )}
      </header>
      <HealthStrip signedIn={signedIn} />
      <main id="main" tabIndex={-1}>
        {session.isPending ? (
          <Loading what="Checking your session" />
        ) : session.isError ? (
          <ErrorState error={session.error} retry={() => session.refetch()} title="Could not reach the api" />
        ) : !signedIn ? (
          <SignInPage />
        ) : (
          <Suspense fallback={<Loading />}>
            <Outlet />
          </Suspense>
        )}
        {signOut.error && <ErrorState error={signOut.error} title="Sign out failed" />}
      </main>
    </TenantEventsProvider>
  );
}

function RouteError() {
  const error = useRouteError();
  return (
    <main id="main">
      <ErrorState error={error} title="This page failed" />
      <Link to="/jobs">Back to jobs</Link>
    </main>
  );
}

function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        <Link to="/jobs">Go to jobs</Link>
      </p>
    </>
  );
}

const router = createBrowserRouter([
  {
    element: <Layout />,
    errorElement: <RouteError />,
    children: [
      { index: true, element: <Navigate to="/jobs" replace /> },
      { path: 'jobs', element: <JobsPage /> },
      { path: 'jobs/:jobId', element: <JobPage /> },
      { path: 'submit', element: <SubmitPage /> },
      { path: 'pipelines', element: <PipelinesPage /> },
      { path: 'pipelines/new', element: <PipelineEditorPage /> },
      { path: 'pipelines/:pipelineId', element: <PipelineEditorPage /> },
      { path: 'libraries', element: <LibrariesPage /> },
      { path: 'libraries/:libraryId', element: <LibraryPage /> },
      { path: '*', element: <NotFound /> },
    ],
  },
]);

export function App() {
  return <RouterProvider router={router} />;
}
