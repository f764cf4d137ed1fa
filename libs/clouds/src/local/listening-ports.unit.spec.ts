import { describe, expect, it } from 'vitest';
import { listeningPortsIn } from './listening-ports.js';

describe('listeningPortsIn', () => {
  it('reads the ports of LISTEN sockets only, IPv4 and IPv6', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1',
      '   2: 0100007F:9C40 0100007F:4E20 01 00000000:00000000 00:00000000 00000000     0        0 3 1',
      '',
    ].join('\n');
    const tcp6 = [
      '  sl  local_address                         remote_address                        st',
      '   0: 00000000000000000000000001000000:4E34 00000000000000000000000000000000:0000 0A 0',
    ].join('\n');
    expect(listeningPortsIn(tcp)).toEqual([20_000, 8_080]);
    expect(listeningPortsIn(tcp6)).toEqual([20_020]);
    expect(listeningPortsIn('')).toEqual([]);
  });
});
