import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/**
 * Opens a TCP connection to host:port from inside the network namespace `ns` (as a program running
 * there would) and answers `open <what the server sent>` (within half a second of connecting, or
 * until it closed), else the error code (`ECONNREFUSED`, `EHOSTUNREACH`, ...) or `TIMEOUT` (3 s).
 * Asynchronous on purpose: a server in the calling process must keep answering meanwhile.
 */
export const connectFrom = async (ns: string, host: string, port: number): Promise<string> =>
  (
    await exec(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        '-e',
        `const c = require('node:net').connect({ host: ${JSON.stringify(host)}, port: ${port} });
         let got = '';
         const done = (s) => { console.log(s); process.exit(); };
         c.setTimeout(3000, () => done('TIMEOUT'));
         c.on('data', (d) => (got += d));
         c.on('end', () => done('open ' + got));
         c.on('connect', () => setTimeout(() => done('open ' + got), 500));
         c.on('error', (e) => done(e.code));`,
      ],
      { encoding: 'utf8' },
    )
  ).stdout.trim();
