import { readFileSync } from 'node:fs';

const TCP_LISTEN = '0A';

/** The ports of the `LISTEN` sockets in one `/proc/net/tcp` or `/proc/net/tcp6` table. */
export const listeningPortsIn = (table: string): number[] =>
  table
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[3] === TCP_LISTEN && f[1]?.includes(':'))
    .map((f) => parseInt(f[1]!.slice(f[1]!.lastIndexOf(':') + 1), 16))
    .filter((p) => Number.isInteger(p) && p > 0);

/**
 * The TCP ports something listens on in this machine's network namespace, on any address (`0.0.0.0`,
 * `::`, `127.0.0.1` or another), from `/proc/net/tcp` and `/proc/net/tcp6`; empty without procfs.
 * Read rather than probed by binding each port: one read sees every listener whatever address it
 * bound (a probe on 127.0.0.1 misses a listener on another address), never holds a port someone
 * else is about to bind, and costs no socket per port.
 */
export const listeningPorts = (): Set<number> => {
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const p of listeningPortsIn(text)) ports.add(p);
  }
  return ports;
};
