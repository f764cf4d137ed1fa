/** Files a nats-server needs for mTLS; all paths absolute. */
export interface ServerTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

export interface ServerConfigOptions {
  readonly name: string;
  readonly host?: string;
  /** Where the monitoring endpoint listens; `host` by default. */
  readonly monitorHost?: string;
  readonly port: number;
  /** The HTTP monitoring port; none by default (it answers without credentials). */
  readonly monitorPort?: number;
  readonly tls: ServerTlsFiles;
  /** The operator/resolver block (see serverAuthConfig in @cps/bus). */
  readonly auth: string;
  readonly jetstreamDir: string;
  readonly maxPayload?: number;
  readonly cluster?: { readonly name: string; readonly port: number; readonly routes: readonly string[] };
}

const q = (s: string): string => JSON.stringify(s);

/** Renders a nats-server 2.9 configuration: mTLS required, operator-mode auth, JetStream on. */
export const renderServerConfig = (o: ServerConfigOptions): string => {
  const host = o.host ?? '127.0.0.1';
  const tls = `{ cert_file: ${q(o.tls.certFile)}, key_file: ${q(o.tls.keyFile)}, ca_file: ${q(o.tls.caFile)}, verify: true, timeout: 3 }`;
  const lines = [
    `server_name: ${q(o.name)}`,
    `listen: "${host}:${o.port}"`,
    ...(o.monitorPort === undefined ? [] : [`http: "${o.monitorHost ?? host}:${o.monitorPort}"`]),
    `max_payload: ${o.maxPayload ?? 1024 * 1024}`,
    `max_connections: 100000`,
    `ping_interval: "20s"`,
    `tls: ${tls}`,
    `jetstream: { store_dir: ${q(o.jetstreamDir)}, max_memory_store: 1073741824, max_file_store: 10737418240 }`,
    o.auth,
  ];
  if (o.cluster) {
    lines.push(
      `cluster: {`,
      `  name: ${q(o.cluster.name)}`,
      `  listen: "${host}:${o.cluster.port}"`,
      `  routes: [${o.cluster.routes.map(q).join(', ')}]`,
      `  tls: ${tls}`,
      `}`,
    );
  }
  return lines.join('\n') + '\n';
};
