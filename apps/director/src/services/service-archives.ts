import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { aggregateIds, CpsError, hasErrorCode, ValidationError } from '@cps/core';
import type { Bus } from '@cps/bus';
import {
  ArchiveStore,
  ensureArchiveBucket,
  inspectArchive,
  type ArchiveInfo,
  type ArchiveReader,
} from '@cps/archives';
import type { ServiceCommand, ServiceEvent, ServiceState } from '@cps/services';
import type { Principal } from '../api/request.js';
import type { Actor, Aggregates, DirectorCore } from '../core/director-core.js';
import type { ApplicationView, ServiceView } from '../core/directory.js';
import type { Applications } from '../applications/applications.js';
import { withUploadedFile } from './archive-upload.js';
import type { Supervisor } from './supervisor.js';

/** A version of a service's code as uploads and `enable` answer it. */
export interface ArchiveAnswer {
  readonly version: string;
  readonly size: number;
  readonly digest: string;
  readonly current: boolean;
}

/** A stored version of a service's code, as the list shows it. */
export interface ArchiveVersionView extends ArchiveAnswer {
  /** When it was stored (ISO 8601). */
  readonly stored: string;
}

export interface ServiceArchivesOptions {
  readonly core: DirectorCore;
  readonly bus: Bus;
  readonly supervisor: Supervisor;
  readonly applications: Applications;
  /** The service aggregates, written here only while no manager runs. */
  readonly aggregates: Aggregates<ServiceCommand, ServiceEvent, ServiceState>;
  /** Asks the service's running manager to make `version` current (`set_archive`). */
  readonly askSetArchive: (
    app: ApplicationView,
    svc: ServiceView,
    version: string,
    requestId: string,
  ) => Promise<unknown>;
  readonly maxArchiveBytes: number;
  /** The type's own check of an archive's shape (`ServiceDefinition.checkArchive`), if it has one. */
  readonly checkArchive: (type: string, nearRoot: readonly string[]) => void;
}

const unknownVersion = (version: string): CpsError =>
  new CpsError('not_found', `no archive version ${version}`, [
    { path: '$.version', code: 'unknown_version', message: 'not a stored version of this service' },
  ]);

/**
 * The versions of each service's code: every upload is a version kept in the service's bucket
 * (`cps_archive_<svc>`) until it is deleted, and one of them is current (the service aggregate's
 * `ArchiveSet`, which the nodes follow). Uploading, listing, downloading, enabling and deleting
 * versions work for every service type, with or without a running manager; a user reaches only
 * the services of their own applications (others' answer `not_found`).
 */
export class ServiceArchives {
  constructor(private readonly o: ServiceArchivesOptions) {}

  /**
   * Stores an upload as a new version and, unless `enable` is false, makes it current. The whole
   * archive is first read through the rules its nodes unpack it with (`inspectArchive`, the same
   * limits), then through the type's own check (a php service wants an `index.php`): one they
   * would refuse is answered with that refusal (`validation`, the entry's path and the issue code)
   * and changes nothing, neither the current version, nor the bucket, nor the nodes.
   */
  async upload(
    p: Principal,
    a: string,
    s: string,
    body: unknown,
    m: Actor,
    o: { readonly enable?: boolean } = {},
  ): Promise<ArchiveAnswer> {
    const { app, svc } = this.o.applications.service(p, a, s);
    if (!body || typeof (body as Readable)[Symbol.asyncIterator] !== 'function')
      throw new ValidationError('send the archive as the raw body (application/octet-stream)', [
        { path: '$', code: 'unsupported_media_type', message: 'application/octet-stream' },
      ]);
    const maxBytes = this.o.maxArchiveBytes;
    return withUploadedFile(body as AsyncIterable<Uint8Array>, maxBytes, async (file) => {
      const { nearRoot } = await inspectArchive(file);
      this.o.checkArchive(svc.type, nearRoot);
      await ensureArchiveBucket(this.o.bus.connection, svc.serviceId);
      const version = `v${Date.now().toString(36)}${createHash('sha256').update(m.requestId).digest('hex').slice(0, 6)}`;
      const info = await this.store(svc).put(version, createReadStream(file), { maxBytes });
      if (o.enable === false) return answer(info, false);
      await this.makeCurrent(app, svc, info, m);
      return answer(info, true);
    });
  }

  /** The stored versions, oldest first, the current one marked; none when nothing was uploaded. */
  async list(p: Principal, a: string, s: string): Promise<{ versions: ArchiveVersionView[] }> {
    const { svc } = this.o.applications.service(p, a, s);
    const all = await this.store(svc)
      .list()
      .catch((e: unknown) => {
        // no bucket yet: nothing was ever uploaded
        if (hasErrorCode(e, 'not_found')) return [];
        throw e;
      });
    const current = svc.archive?.version;
    return {
      versions: all.map((i) => ({ ...answer(i, i.version === current), stored: i.stored })),
    };
  }

  /** Opens a stored version for reading; its content is checked against its digest as it streams. */
  async open(p: Principal, a: string, s: string, version: string): Promise<ArchiveReader> {
    const { svc } = this.o.applications.service(p, a, s);
    return this.store(svc)
      .get(version)
      .catch((e: unknown) => {
        throw hasErrorCode(e, 'not_found') ? unknownVersion(version) : e;
      });
  }

  /** Makes a stored version current, as an upload does; the current one again changes nothing. */
  async enable(p: Principal, a: string, s: string, version: string, m: Actor): Promise<ArchiveAnswer> {
    const { app, svc } = this.o.applications.service(p, a, s);
    const info = await this.infoOf(svc, version);
    await this.makeCurrent(app, svc, info, m);
    return answer(info, true);
  }

  /** Deletes a stored version; the current one is refused (`conflict`): enable another first. */
  async delete(p: Principal, a: string, s: string, version: string): Promise<void> {
    const { svc } = this.o.applications.service(p, a, s);
    await this.infoOf(svc, version);
    if (svc.archive?.version === version)
      throw new CpsError('conflict', `archive ${version} is the current version of ${svc.name}`, [
        {
          path: '$.version',
          code: 'active_version',
          message: 'the active version cannot be deleted; enable another first',
        },
      ]);
    if (!(await this.store(svc).delete(version))) throw unknownVersion(version);
  }

  /**
   * Records `info` as the service's code: through its manager when one runs (it hands the archive
   * to the nodes), else in the service aggregate. Answers once this director's read model shows it.
   */
  private async makeCurrent(app: ApplicationView, svc: ServiceView, info: ArchiveInfo, m: Actor) {
    if (this.o.supervisor.managerOf(svc.serviceId)) {
      await this.o.askSetArchive(app, svc, info.version, m.requestId);
      await this.o.core.caughtUp(await this.o.core.store.head());
      return;
    }
    const res = await this.o.aggregates.run(
      aggregateIds.service(app.appId, svc.serviceId),
      'SetArchive',
      { version: info.version, size: info.size, digest: info.digest },
      m,
    );
    await this.o.core.caughtUp(res.position);
  }

  private async infoOf(svc: ServiceView, version: string): Promise<ArchiveInfo> {
    const info = await this.store(svc)
      .info(version)
      .catch((e: unknown) => {
        if (hasErrorCode(e, 'not_found')) return undefined;
        throw e;
      });
    if (!info) throw unknownVersion(version);
    return info;
  }

  private store(svc: ServiceView): ArchiveStore {
    return new ArchiveStore(this.o.bus.connection, { serviceId: svc.serviceId });
  }
}

const answer = (i: ArchiveInfo, current: boolean): ArchiveAnswer => ({
  version: i.version,
  size: i.size,
  digest: i.digest,
  current,
});
