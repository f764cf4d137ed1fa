import type { ReactNode } from 'react';
import { useMemo, useState } from 'react';
import { useInfiniteQuery, useQueryClient, type InfiniteData } from '@tanstack/react-query';
import { unwrap, type components, type HistoryEvent } from '@cps/sdk';
import { useLiveEvents } from '../live.js';
import { useApi } from '../session.js';
import { Empty, ErrorView, Time, field } from '../ui.js';

type Page = components['schemas']['EventPage'];

/**
 * The event timeline: everything recorded about what the user owns (admins: all), oldest first, a
 * page at a time from where it stopped, and live at its end. Filters go to the director;
 * the search looks through what is loaded.
 */
export const EventsPage = (): ReactNode => {
  const api = useApi();
  const queries = useQueryClient();
  const [filters, setFilters] = useState({ application: '', type: '' });
  const [search, setSearch] = useState('');
  const key = ['events', filters.application, filters.type] as const;
  const pages = useInfiniteQuery({
    queryKey: key,
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (p: Page) => p.nextCursor,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET('/v1/events', {
          params: {
            query: {
              limit: 200,
              ...(filters.application ? { application: filters.application } : {}),
              ...(filters.type ? { type: filters.type } : {}),
              ...(pageParam ? { after: pageParam } : {}),
            },
          },
        }),
      ),
  });
  // at the end of the history, new events are appended as they come
  useLiveEvents((e) => {
    if (pages.hasNextPage) return;
    if (filters.type && !filters.type.split(',').includes(e.type)) return;
    if (filters.application && !e.appId) return;
    queries.setQueryData<InfiniteData<Page>>(key, (old) => {
      if (!old) return old;
      const last = old.pages.at(-1);
      if (!last || last.events.some((x) => x.id === e.id)) return old;
      return { ...old, pages: [...old.pages.slice(0, -1), { ...last, events: [...last.events, e] }] };
    });
  });
  const events = useMemo(() => {
    const all = pages.data?.pages.flatMap((p) => p.events) ?? [];
    const q = search.trim().toLowerCase();
    return q ? all.filter((e) => JSON.stringify(e).toLowerCase().includes(q)) : all;
  }, [pages.data, search]);
  return (
    <>
      <h1>Events</h1>
      <form
        className="inline"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget);
          setFilters({ application: field(f, 'application').trim(), type: field(f, 'type').trim() });
        }}
      >
        <label>
          Application
          <input name="application" defaultValue={filters.application} placeholder="any" />
        </label>
        <label>
          Event types
          <input name="type" defaultValue={filters.type} placeholder="e.g. NodeFailed,NodeReady" />
        </label>
        <button type="submit">Filter</button>
        <label>
          Search the loaded events
          <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} />
        </label>
      </form>
      <ErrorView error={pages.error} what="Could not load the events" />
      {events.length === 0 && !pages.isPending ? (
        <Empty>No events match. Change the filters, or act on an application: what happens shows here.</Empty>
      ) : (
        <table aria-label="events">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Event</th>
              <th scope="col">Actor</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {events.map((e: HistoryEvent) => (
              <tr key={e.id}>
                <td>
                  <Time at={e.at} />
                </td>
                <td>{e.type}</td>
                <td>{e.actor}</td>
                <td>
                  <code className="data">{JSON.stringify(e.data)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pages.hasNextPage && (
        <button type="button" disabled={pages.isFetchingNextPage} onClick={() => void pages.fetchNextPage()}>
          {pages.isFetchingNextPage ? 'Loading…' : 'Load more'}
        </button>
      )}
    </>
  );
};
