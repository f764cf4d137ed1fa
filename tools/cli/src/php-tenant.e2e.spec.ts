import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCloud } from '@cps/clouds';
import { cliPlatform, eventually } from '@cps/testing';

/**
 * What a hostile tenant's PHP tries on its own php node, each attempt answered as one JSON field:
 * files outside its document root (the machine's, the platform's keys, its node's private
 * directory, another node's files), other applications' nodes, NATS without a certificate, the
 * director. Everything is tried both from PHP itself and from a shell it starts.
 */
const PROBE = String.raw`<?php
header('Content-Type: application/json');
$t = json_decode(file_get_contents(__DIR__ . '/targets.json'), true);
$r = [];
$read = function ($p) { $c = @file_get_contents($p); return $c === false ? null : substr($c, 0, 80); };
$sh = function ($cmd) { $o = []; $code = 0; @exec($cmd . ' 2>/dev/null', $o, $code); return ['code' => $code, 'out' => substr(implode("\n", $o), 0, 200)]; };
$tcp = function ($host, $port) { $s = @fsockopen($host, $port, $errno, $errstr, 2); if (!$s) return null; stream_set_timeout($s, 2); return $s; };
$r['php_shadow'] = $read('/etc/shadow');
$r['php_node_identity'] = $read($t['nodeDir'] . '/identity.json');
$r['php_master_key'] = $read($t['home'] . '/master.key');
$r['php_other_node'] = $read($t['otherNodeDir'] . '/php-fpm.conf');
$r['sh_shadow'] = $sh('cat /etc/shadow');
$r['sh_node_identity'] = $sh('cat ' . escapeshellarg($t['nodeDir'] . '/identity.json'));
$r['sh_node_state'] = $sh('ls ' . escapeshellarg($t['nodeDir'] . '/state'));
$r['sh_platform_home'] = $sh('ls -A ' . escapeshellarg($t['home']));
$r['sh_platform_nodes'] = $sh('ls -A ' . escapeshellarg($t['home'] . '/cloud/nodes'));
$r['sh_master_key'] = $sh('cat ' . escapeshellarg($t['home'] . '/master.key'));
$r['sh_other_node'] = $sh('ls ' . escapeshellarg($t['otherNodeDir']));
$r['sh_processes'] = $sh('ps -e -o comm= | sort -u');
foreach ($t['others'] as $i => $o) {
  $s = $tcp($o['address'], $o['port']);
  $r['other_app_' . $i] = $s ? 'connected' : null;
  if ($s) fclose($s);
}
$s = $tcp($t['nats']['host'], $t['nats']['port']);
if ($s) {
  $info = fgets($s);
  fwrite($s, "CONNECT {\"verbose\":false}\r\nPING\r\n");
  $answer = fgets($s);
  fclose($s);
  $r['nats'] = ['info' => substr((string) $info, 0, 40), 'answer' => $answer === false ? null : trim($answer)];
} else {
  $r['nats'] = null;
}
foreach ($t['director'] as $i => $d) {
  $s = $tcp($d['host'], $d['port']);
  $r['director_' . $i] = $s ? 'connected' : null;
  if ($s) fclose($s);
}
echo json_encode($r);
`;

describe.skipIf(LocalCloud.hostModeUnavailable() !== undefined)(
  'php: a hostile tenant on its own node',
  () => {
    const platform = cliPlatform('cps-php-tenant-');
    const { cps, home } = platform;
    const src = mkdtempSync(join(tmpdir(), 'cps-php-tenant-code-'));

    const site = async (app: string): Promise<{ url: string; address: string; port: number }> => {
      const info = JSON.parse((await cps('--json', 'service', 'info', 'site', '--app', app)).stdout) as {
        endpoints?: Record<string, { address: string; port: number }>;
      };
      const e = info.endpoints?.['http'];
      if (!e) throw new Error('no http endpoint');
      return { url: `http://${e.address}:${e.port}`, ...e };
    };
    const deploy = async (app: string, code: string) => {
      const manifest = join(src, `${app}.json`);
      writeFileSync(
        manifest,
        JSON.stringify({
          Application: app,
          Services: [{ ServiceName: 'site', Type: 'php', Start: 1, Archive: code }],
        }),
      );
      await cps('deploy', manifest);
      return eventually(
        () => site(app).catch(() => undefined),
        (s) => s !== undefined,
        30_000,
      );
    };

    beforeAll(async () => {
      await platform.init();
      await cps('up');
    }, 120_000);
    afterAll(async () => {
      await platform.cleanup();
      rmSync(src, { recursive: true, force: true });
    }, 60_000);

    it('reads nothing that is not its own node’s, reaches no other application, no NATS without a certificate, no director', async () => {
      mkdirSync(join(src, 'victim'));
      writeFileSync(join(src, 'victim', 'index.php'), '<?php echo "victim";');
      const victim = (await deploy('victim', 'victim'))!;
      await eventually(
        () =>
          fetch(`${victim.url}/`).then(
            (r) => r.text(),
            () => '',
          ),
        (t) => t === 'victim',
        60_000,
      );
      const victimNode = JSON.parse(
        (await cps('--json', 'service', 'nodes', 'site', '--app', 'victim')).stdout,
      ) as {
        nodes: { nodeId: string }[];
      };
      const status = JSON.parse((await cps('--json', 'status')).stdout) as {
        health: { urls: string[] };
        directorUrl: string;
      };
      const nats = new URL(status.health.urls[0]!.replace('tls://', 'http://'));
      const director = new URL(status.directorUrl);

      mkdirSync(join(src, 'hostile'));
      writeFileSync(join(src, 'hostile', 'index.php'), PROBE);
      const hostile = (await deploy('hostile', 'hostile'))!;
      const nodes = JSON.parse(
        (await cps('--json', 'service', 'nodes', 'site', '--app', 'hostile')).stdout,
      ) as {
        nodes: { nodeId: string }[];
      };
      const nodeDir = join(home, 'cloud', 'nodes', nodes.nodes[0]!.nodeId);
      // what it is told to try: real paths and addresses of this platform
      const targets = {
        nodeDir,
        home,
        otherNodeDir: join(home, 'cloud', 'nodes', victimNode.nodes[0]!.nodeId, 'work'),
        others: [
          { address: victim.address, port: victim.port },
          { address: victim.address, port: victim.port + 3 },
        ],
        nats: { host: nats.hostname, port: Number(nats.port) },
        director: [
          { host: '127.0.0.1', port: Number(director.port) },
          { host: nats.hostname, port: Number(director.port) },
        ],
      };
      // the targets reach the code as a second version of it (the tenant's own upload)
      writeFileSync(join(src, 'hostile', 'targets.json'), JSON.stringify(targets));
      await cps('php', 'upload', 'site', join(src, 'hostile'), '--app', 'hostile', '--enable');

      const r = await eventually(
        () =>
          fetch(`${hostile.url}/`).then(
            async (x) => (x.status === 200 ? ((await x.json()) as Record<string, unknown>) : undefined),
            () => undefined,
          ),
        (x) => x !== undefined && 'other_app_0' in x,
        60_000,
      );
      console.log(JSON.stringify(r, null, 1));
      // what is not its own: the machine's secrets (permissions), the platform's keys (root's, or
      // not even there), another node's files (not there: a mount namespace of its own)
      for (const k of ['php_shadow', 'php_node_identity', 'php_master_key', 'php_other_node'])
        expect(r![k], k).toBeNull();
      expect((r!['sh_shadow'] as { code: number }).code).not.toBe(0);
      // the platform's keys and its node's private directory: not readable; the platform's home and
      // the other application's node: not even there (a mount namespace of its own)
      for (const k of ['sh_node_identity', 'sh_node_state', 'sh_master_key', 'sh_other_node'])
        expect((r![k] as { code: number }).code, k).not.toBe(0);
      // of the platform's home, only the way down to its own node's directory is there
      expect((r!['sh_platform_home'] as { out: string }).out).toBe('cloud');
      expect((r!['sh_platform_nodes'] as { out: string }).out).toBe(nodes.nodes[0]!.nodeId);
      // its node's processes only (its agent among them, root's): no nats-server, no database
      expect((r!['sh_processes'] as { out: string }).out).not.toMatch(/nats-server|mariadbd/);
      // the other application's nginx and php-fpm: unreachable
      expect(r!['other_app_0']).toBeNull();
      expect(r!['other_app_1']).toBeNull();
      // NATS: reachable (nodes need it) but nothing without TLS and a client certificate
      const n = r!['nats'] as { info: string; answer: string | null } | null;
      if (n) expect(n.answer ?? '').not.toBe('PONG');
      // the director: not reachable from a node
      expect(r!['director_0']).toBeNull();
      expect(r!['director_1']).toBeNull();
    }, 240_000);
  },
);
