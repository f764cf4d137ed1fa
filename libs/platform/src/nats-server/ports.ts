import { createServer } from 'node:net';

const LOW = 10_000;
const HIGH = 32_000;

export const isFree = (port: number, host: string): Promise<boolean> =>
  new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });

/**
 * A free loopback port below the ephemeral range (cluster route sockets use ephemeral ports, so
 * a listener there can collide). Free now is not free later: callers retry on EADDRINUSE.
 */
export const freePort = async (
  host = '127.0.0.1',
  taken: ReadonlySet<number> = new Set(),
): Promise<number> => {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (!taken.has(port) && (await isFree(port, host))) return port;
  }
  throw new Error('no free port found below 32000');
};
