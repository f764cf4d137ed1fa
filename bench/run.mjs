#!/usr/bin/env node
// cps benchmark suite. Run after `npm run build` (or use `npm run bench`, which builds first):
//
//   node bench/run.mjs [--only rpc,append,load,replay,replicas | --only a,c] [--quick] [--runs N] [--json FILE]
//
// Each benchmark measures a cps figure and the matching raw nats.js figure in the same run, on the
// same servers, and repeats that BENCH_RUNS times (default 5); the table shows medians over runs.
// See bench/README.md.
import { cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtures, servers, stopAll } from './lib/fixtures.mjs';
import { median, withTimeout } from './lib/stats.mjs';
import rpc from './cases/rpc.mjs';
import append from './cases/append.mjs';
import load from './cases/load.mjs';
import replay from './cases/replay.mjs';
import replicas from './cases/replicas.mjs';
import nodes, { nodesHost } from './cases/nodes.mjs';
import heartbeats from './cases/heartbeats.mjs';
import directorHttp from './cases/director-http.mjs';
import directorStart from './cases/director-start.mjs';
import cli from './cases/cli.mjs';
import { mysqlTps, mysqlReplica, mysqlFailover, mysqlBackup } from './cases/mysql.mjs';
import { phpBench } from './cases/php.mjs';
import dashboard from './cases/dashboard.mjs';
import storage from './cases/storage.mjs';

const ALL = [
  rpc,
  append,
  load,
  replay,
  replicas,
  nodes,
  heartbeats,
  directorHttp,
  directorStart,
  cli,
  nodesHost,
  mysqlTps,
  mysqlReplica,
  mysqlFailover,
  mysqlBackup,
  phpBench,
  dashboard,
  storage,
];

const usage = `usage: node bench/run.mjs [options]
  --only LIST   comma-separated benchmarks: ${ALL.map((c) => `${c.id} (${c.letter})`).join(', ')}
  --quick       fewer iterations (and 3 runs unless BENCH_RUNS or --runs is given)
  --runs N      runs per benchmark (default: BENCH_RUNS or 5)
  --json FILE   also write every run's figures as JSON
  --help        this text
environment: BENCH_RUNS (runs), BENCH_STREAM_SIZE (commits in the replay/load stream, default 100000),
             BENCH_TIMEOUT_S (hard limit for the whole suite, default 900 plus the allowance of the
             mysql and php benchmarks selected)`;

const parseArgs = (argv) => {
  const o = { only: undefined, quick: false, runs: undefined, json: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      console.log(usage);
      process.exit(0);
    } else if (a === '--quick') o.quick = true;
    else if (a.startsWith('--only'))
      o.only = value()
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    else if (a.startsWith('--runs')) o.runs = Number(value());
    else if (a.startsWith('--json')) o.json = resolve(value());
    else throw new Error(`unknown option ${a}\n${usage}`);
  }
  return o;
};

let interrupted = false;

const log = (...args) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

const fmt = (value, unit) => {
  if (value === undefined || value === null || Number.isNaN(value)) return '-';
  if (unit === 'events/s' || unit === 'tps') return Math.round(value).toLocaleString('en-US');
  if (unit === 'req/s') return value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US');
  if (unit === 'requests') return Math.round(value).toLocaleString('en-US');
  if (unit === 'load' || unit === 'µs') return value.toFixed(2);
  if (unit === 'ms') return value < 10 ? value.toFixed(3) : value.toFixed(1);
  if (unit === 'x') return `${value.toFixed(2)}x`;
  if (unit === 'MB' || unit === 'kB' || unit === '% core' || unit === 'MB/s') return value.toFixed(1);
  if (unit === 's') return value.toFixed(2);
  return String(value);
};

const targetText = (f) => {
  const t = f.target;
  if (!t) return 'info';
  if (t.note) return t.note;
  if (t.on === 'ratio') return `cps/raw ${t.op} ${t.value}`;
  return `cps ${t.op} ${fmt(t.value, f.unit)} ${f.unit}`;
};

const verdict = (f, row) => {
  const t = f.target;
  if (!t || t.note) return '-';
  const v = t.on === 'ratio' ? row.ratio : row.cps;
  if (!Number.isFinite(v)) return 'n/a';
  return (t.op === '<=' ? v <= t.value : v >= t.value) ? 'met' : 'NOT met';
};

const table = (rows) => {
  const header = ['figure', 'unit', 'cps (median)', 'raw (median)', 'cps/raw', 'target', 'verdict'];
  const lines = rows.map((r) => [
    r.label,
    r.unit,
    fmt(r.cps, r.unit),
    r.baseline === false ? '—' : fmt(r.raw, r.unit),
    r.baseline === false ? '—' : fmt(r.ratio, 'x'),
    r.target,
    r.verdict,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(line)].join('\n');
};

const main = async () => {
  const args = parseArgs(process.argv.slice(2));
  // Resolve workspace packages and the test key cache from the repository root.
  process.chdir(fileURLToPath(new URL('..', import.meta.url)));
  const runs = args.runs ?? (process.env.BENCH_RUNS ? Number(process.env.BENCH_RUNS) : args.quick ? 3 : 5);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`invalid run count ${runs}`);
  const opts = { quick: args.quick, streamSize: Number(process.env.BENCH_STREAM_SIZE ?? 100_000) };
  const selected = args.only
    ? ALL.filter((c) => args.only.includes(c.id) || args.only.includes(c.letter))
    : ALL;
  if (args.only) {
    const unknown = args.only.filter((s) => !ALL.some((c) => c.id === s || c.letter === s));
    if (unknown.length) throw new Error(`unknown benchmark(s): ${unknown.join(', ')}\n${usage}`);
  }

  // the long benchmarks (a service's servers, minutes of load) bring their own allowance
  const allowanceS = selected.reduce(
    (s, c) => s + (c.allowance && !c.unavailable?.() ? c.allowance.prepareS + c.allowance.runS * runs : 0),
    0,
  );
  const limitS = Number(process.env.BENCH_TIMEOUT_S ?? 900 + allowanceS);
  const watchdog = setTimeout(() => {
    log(`suite exceeded ${limitS} s: stopping servers and exiting`);
    void stopAll().finally(() => process.exit(2));
  }, limitS * 1000);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      interrupted = true;
      log(`${signal}: stopping servers`);
      void stopAll().finally(() => process.exit(130));
    });
  }

  const env = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    runs,
    quick: opts.quick,
    streamSize: opts.streamSize,
    natsServer: undefined,
  };
  log(`node ${env.node}, ${env.cpus}, ${runs} run(s) per benchmark${opts.quick ? ', quick' : ''}`);

  const lastUse = new Map(selected.map((c, i) => [c.fixture, i]));
  const live = new Map();
  const results = [];
  const failures = [];
  const started = Date.now();
  try {
    for (const [index, c] of selected.entries()) {
      // a benchmark this machine cannot run (host mode needs root) is left out, saying why
      const unavailable = c.unavailable?.();
      if (unavailable) {
        log(`${c.letter}. ${c.title}: skipped, ${unavailable}`);
        results.push({
          id: c.id,
          key: 'skipped',
          label: `${c.letter}. ${c.id}`,
          unit: '',
          cps: NaN,
          raw: NaN,
          ratio: NaN,
          target: `skipped: ${unavailable}`,
          verdict: 'skipped',
          runs: [],
        });
        continue;
      }
      const perRun = [];
      let state;
      try {
        log(`${c.letter}. ${c.title}`);
        if (!live.has(c.fixture)) {
          const t0 = Date.now();
          live.set(
            c.fixture,
            await withTimeout(fixtures[c.fixture].create(opts, log), 300_000, `fixture ${c.fixture}`),
          );
          log(`fixture ${c.fixture} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        }
        const fx = live.get(c.fixture);
        env.natsServer ??= (fx.nc ?? fx.director ?? fx.any)?.info?.version;
        state = await withTimeout(c.prepare(fx, opts), c.prepareTimeoutMs ?? 120_000, `${c.id} prepare`);
        for (let r = 0; r < runs; r++) {
          const values = await withTimeout(
            c.run(state, r, opts),
            c.runTimeoutMs ?? 180_000,
            `${c.id} run ${r + 1}`,
          );
          perRun.push(values);
          log(
            `${c.id} run ${r + 1}/${runs}: ` +
              c.figures
                .map((f) => `${f.key} ${fmt(values[f.key]?.cps, f.unit)}/${fmt(values[f.key]?.raw, f.unit)}`)
                .join(', '),
          );
        }
      } catch (e) {
        failures.push({ id: c.id, error: String(e?.stack ?? e) });
        log(`${c.id} FAILED: ${e?.stack ?? e}`);
      } finally {
        if (state) await c.dispose?.(state)?.catch?.(() => undefined);
        if (lastUse.get(c.fixture) === index && live.has(c.fixture)) {
          const fx = live.get(c.fixture);
          live.delete(c.fixture);
          await fixtures[c.fixture].dispose(fx).catch((e) => log(`stopping fixture ${c.fixture}: ${e}`));
        }
      }
      for (const f of c.figures) {
        const cps = perRun.map((v) => v[f.key]?.cps);
        const raw = perRun.map((v) => v[f.key]?.raw);
        const row = {
          id: c.id,
          key: f.key,
          label: f.label,
          unit: f.unit,
          baseline: f.baseline,
          cps: median(cps),
          raw: median(raw),
          // The ratio is the median of the per-run ratios (each run's cps and raw figures were
          // measured side by side), so it may differ slightly from cps(median)/raw(median).
          ratio: f.ratio === false ? NaN : median(perRun.map((v) => v[f.key]?.cps / v[f.key]?.raw)),
          target: targetText(f),
          runs: perRun.map((v) => v[f.key]),
        };
        row.verdict = perRun.length ? verdict(f, row) : 'failed';
        results.push(row);
      }
    }
  } finally {
    clearTimeout(watchdog);
    for (const [name, fx] of live) await fixtures[name].dispose(fx).catch(() => undefined);
    await stopAll();
  }

  const seconds = (Date.now() - started) / 1000;
  console.log(
    `\ncps benchmarks: ${env.date.slice(0, 10)}, node ${env.node}, nats-server ${env.natsServer ?? '?'}, ${env.cpus}, ` +
      `${runs} run(s)${opts.quick ? ' (quick)' : ''}, stream ${opts.streamSize.toLocaleString('en-US')} commits, ${seconds.toFixed(0)} s\n`,
  );
  console.log(table(results));
  if (failures.length) console.log(`\nfailed: ${failures.map((f) => f.id).join(', ')}`);
  if (args.json) {
    writeFileSync(args.json, `${JSON.stringify({ env, seconds, results, failures }, null, 2)}\n`);
    log(`wrote ${args.json}`);
  }
  if (servers.size) log(`warning: ${servers.size} server set(s) still registered`);
  return failures.length ? 1 : 0;
};

main().then(
  async (code) => {
    await stopAll();
    process.exit(interrupted ? 130 : code);
  },
  async (e) => {
    console.error(e?.stack ?? e);
    await stopAll();
    process.exit(interrupted ? 130 : 1);
  },
);
