import type { Command } from 'commander';
import { CpsError } from '@cps/core';
import { json, table } from '../output.js';
import { callMethod, director, examples, needApp, type Globals } from './shared.js';

/** `--replicas`: a whole number of copies, 1 to 9, or a validation error naming the flag. */
export const parseReplicas = (value: string): number => {
  const n = /^\s*\d\s*$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 9))
    throw new CpsError('validation', `--replicas needs a number of copies, got ${JSON.stringify(value)}`, [
      { path: '--replicas', code: 'invalid_replicas', message: 'an integer from 1 to 9' },
    ]);
  return n;
};

/** `--quota`: bytes, with an optional K, M, G or T (powers of 1024), or a validation error. */
export const parseQuota = (value: string): number => {
  const m = /^\s*(\d+)\s*([KMGT]?)i?B?\s*$/i.exec(value);
  const unit = { '': 0, K: 1, M: 2, G: 3, T: 4 }[(m?.[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const n = m ? Number(m[1]) * 1024 ** unit : NaN;
  if (!(Number.isSafeInteger(n) && n > 0))
    throw new CpsError('validation', `--quota needs a size, got ${JSON.stringify(value)}`, [
      { path: '--quota', code: 'invalid_quota', message: 'bytes, or a number with K, M, G or T: 10G' },
    ]);
  return n;
};

const human = (bytes: unknown): string => {
  const n = Number(bytes);
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
};

/** `cps storage …`: the volumes of a storage service, through the director as `cps service call`. */
export const storageCommands = (program: Command, g: Globals): void => {
  const storage = examples(
    program.command('storage').description('a storage service: its volumes (give --app)'),
    [
      'cps storage volumes files --app shop',
      'cps storage create-volume files uploads --replicas 2 --quota 10G --app shop',
      'cps storage set-replication files uploads --replicas 3 --app shop',
      'cps storage delete-volume files uploads --app shop',
    ],
  );

  examples(storage.command('volumes <svc>'), ['cps storage volumes files --app shop'])
    .description('the volumes: replicas, quota, files, bytes used, mounts, health')
    .option('--app <app>', 'application')
    .action(async (svc: string, o: { app?: string }) => {
      const r = (await callMethod(director(g), needApp(o), svc, 'list_volumes', {})) as {
        volumes: Record<string, unknown>[];
      };
      if (g().json) return json(r);
      if (r.volumes.length === 0)
        return console.log('no volumes yet: cps storage create-volume SVC NAME --replicas N --app APP');
      table(
        r.volumes.map((v) => ({
          ...v,
          used: human(v['usedBytes']),
          quota: v['quotaBytes'] === undefined ? '' : human(v['quotaBytes']),
        })),
        ['name', 'replicas', 'quota', 'files', 'used', 'mounts', 'health'],
      );
    });

  examples(storage.command('create-volume <svc> <name>'), [
    'cps storage create-volume files uploads --replicas 2 --app shop',
  ])
    .description('makes a volume with its number of copies (at most one per storage node) and a quota')
    .option('--app <app>', 'application')
    .option('--replicas <n>', 'copies of each chunk (default 2)', parseReplicas)
    .option('--quota <size>', 'the most its files may hold: bytes, or 500M, 10G', parseQuota)
    .action(async (svc: string, name: string, o: { app?: string; replicas?: number; quota?: number }) => {
      const v = await callMethod(director(g), needApp(o), svc, 'create_volume', {
        name,
        ...(o.replicas !== undefined ? { replicas: o.replicas } : {}),
        ...(o.quota !== undefined ? { quotaBytes: o.quota } : {}),
      });
      if (g().json) return json(v);
      const made = v as { name: string; replicas: number };
      console.log(`volume ${made.name}: ${made.replicas} replicas`);
    });

  examples(storage.command('set-replication <svc> <name>'), [
    'cps storage set-replication files uploads --replicas 3 --app shop',
  ])
    .description('changes the number of copies of a volume (made or removed in the background)')
    .option('--app <app>', 'application')
    .requiredOption('--replicas <n>', 'copies of each chunk', parseReplicas)
    .action(async (svc: string, name: string, o: { app?: string; replicas: number }) => {
      const r = await callMethod(director(g), needApp(o), svc, 'set_replication', {
        name,
        replicas: o.replicas,
      });
      if (g().json) return json(r);
      console.log(`volume ${name}: ${o.replicas} replicas`);
    });

  examples(storage.command('delete-volume <svc> <name>'), [
    'cps storage delete-volume files uploads --app shop',
    'cps storage delete-volume files uploads --app shop --force',
  ])
    .description('deletes a volume and its files; refused while a node mounts it, unless --force')
    .option('--app <app>', 'application')
    .option('--force', 'delete it even while mounted')
    .action(async (svc: string, name: string, o: { app?: string; force?: boolean }) => {
      const r = await callMethod(director(g), needApp(o), svc, 'delete_volume', {
        name,
        force: o.force === true,
      });
      if (g().json) return json(r);
      console.log(`volume ${name} deleted`);
    });
};
