import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { RouterProvider } from '@tanstack/react-router';
import { CpsApiError } from '@cps/sdk';
import { router } from './router.js';
import { SessionProvider } from './session.js';
import './styles.css';

/**
 * The cps dashboard: a single page on the director's own origin. Answers of the API are cached by
 * TanStack Query and refreshed by the tab's one event stream (live.tsx), never on a timer.
 */
const queries = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: Infinity,
      refetchOnWindowFocus: false,
      // a refusal is an answer: only what may pass (the director restarting) is asked again
      retry: (n, e) => !(e instanceof CpsApiError && e.status >= 400 && e.status < 500) && n < 3,
    },
  },
});

const root = document.getElementById('root');
if (root)
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queries}>
        <SessionProvider>
          <RouterProvider router={router} />
        </SessionProvider>
      </QueryClientProvider>
    </StrictMode>,
  );
