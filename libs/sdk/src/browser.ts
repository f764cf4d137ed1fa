import { clientOver, type CpsClient } from './client.js';

/*
 * The SDK's front door in a browser (the `browser` condition of the package's exports): the same
 * client, errors and follower, over the page's own `fetch`, so TLS is the browser's.
 */

export * from './client.js';

export interface CpsClientOptions {
  /** The director's base URL: the page's own origin when served by the director. */
  readonly url: string;
  /** A session or API token (`cps_…`). */
  readonly token?: string;
}

/** Creates a client over the browser's `fetch`; every call answers `{ data, error, response }`. */
export const createCpsClient = (o: CpsClientOptions): CpsClient =>
  clientOver((input) => fetch(input), o.url, o.token);
