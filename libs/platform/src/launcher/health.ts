import { jetstreamManager } from '@nats-io/jetstream';
import { connectBus, EVENT_STREAM, SNAPSHOT_BUCKET } from '@cps/bus';
import type { PlatformHome } from '../home/platform-home.js';

export interface PlatformHealth {
  readonly platformId: string;
  readonly urls: readonly string[];
  readonly server: {
    readonly version: string;
    readonly name: string;
    readonly tlsRequired: boolean;
    readonly tlsVerify: boolean;
  };
  readonly director: string;
  readonly account: string;
  readonly jetstream: { readonly streams: number; readonly events: number; readonly snapshotBucket: boolean };
  readonly roundTripMs: number;
}

/**
 * Proves the platform's bus works end to end: connects as the director (mTLS + JWT), checks that
 * the server requires and verifies client certificates, reads JetStream state, measures a round trip.
 */
export const checkHealth = async (
  home: PlatformHome,
  directorId = home.directorId(),
): Promise<PlatformHealth> => {
  const info = home.info();
  const id = await home.directorIdentity(directorId);
  const nc = await connectBus({
    servers: home.natsUrls(),
    tls: id.tls,
    credentials: id.credentials,
    inboxPrefix: id.inboxPrefix,
    reconnect: false,
    name: 'cps-health',
  });
  try {
    const si = nc.info;
    const jsm = await jetstreamManager(nc);
    const account = await jsm.getAccountInfo();
    const stream = await jsm.streams.info(EVENT_STREAM).catch(() => undefined);
    const bucket = await jsm.streams
      .info(`KV_${SNAPSHOT_BUCKET}`)
      .then(() => true)
      .catch(() => false);
    const t0 = performance.now();
    await nc.flush();
    const rtt = performance.now() - t0;
    return {
      platformId: info.platformId,
      urls: home.natsUrls(),
      server: {
        version: si?.version ?? '?',
        name: si?.server_name ?? '?',
        tlsRequired: si?.tls_required === true,
        tlsVerify: (si as { tls_verify?: boolean } | undefined)?.tls_verify === true,
      },
      director: `${id.identity.role}:${id.identity.id}`,
      account: info.accountPublicKey,
      jetstream: { streams: account.streams, events: stream?.state.messages ?? 0, snapshotBucket: bucket },
      roundTripMs: rtt,
    };
  } finally {
    await nc.close();
  }
};
