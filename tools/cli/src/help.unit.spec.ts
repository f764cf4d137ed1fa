import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from './program.js';

// Every visible command's --help ends with examples, and each example is a real invocation of that
// command: it names the command (after global flags) and the command tree parses it.

interface Case {
  readonly name: string;
  readonly path: readonly string[];
  readonly cmd: Command;
}

const hidden = (c: Command): boolean => (c as unknown as { _hidden?: boolean })._hidden === true;

/** The visible commands below `c`, depth first, with their paths (`['app', 'create']`). */
const visible = (c: Command, path: readonly string[] = []): Case[] =>
  c.commands
    .filter((s) => !hidden(s))
    .flatMap((s) => {
      const p = [...path, s.name()];
      return [{ name: `cps ${p.join(' ')}`, path: p, cmd: s }, ...visible(s, p)];
    });

const program = buildProgram();
const cases: Case[] = [{ name: 'cps', path: [], cmd: program }, ...visible(program)];

/** The full help of a command, with the sections `addHelpText` adds (`helpInformation()` has none). */
const helpOf = (c: Command): string => {
  let out = '';
  c.configureOutput({ writeOut: (s) => (out += s) });
  c.outputHelp();
  return out;
};

/** The example lines of a help text, without their `  $ `. */
const examplesIn = (help: string): string[] => {
  const at = help.indexOf('\nExamples:\n');
  if (at < 0) return [];
  return help
    .slice(at)
    .split('\n')
    .filter((l) => l.startsWith('  $ '))
    .map((l) => l.slice(4));
};

/** Shell words of a line (quotes removed), with `|`, `<`, `>`, `<(` and `)` as words of their own. */
const words = (line: string): string[] =>
  (line.match(/<\(|[|<>)]|(?:[^\s'"|<>()]|'[^']*'|"(?:[^"\\]|\\.)*")+/g) ?? []).map((w) =>
    w.replace(/'([^']*)'|"((?:[^"\\]|\\.)*)"/g, (_, a?: string, b?: string) =>
      a !== undefined ? a : (b ?? '').replace(/\\(.)/g, '$1'),
    ),
  );

/** The arguments of the `cps` invocation in an example line (after a pipe, inside `<( )` …). */
const cpsArgs = (line: string): string[] | undefined => {
  const w = words(line);
  const at = w.indexOf('cps');
  if (at < 0) return undefined;
  const rest = w.slice(at + 1);
  const end = rest.findIndex((x) => ['|', '<', '>', '<(', ')'].includes(x));
  return end < 0 ? rest : rest.slice(0, end);
};

/** The arguments after the leading global flags (`--json`, `--context prod`). */
const afterGlobals = (args: readonly string[]): string[] => {
  let i = 0;
  for (;;) {
    const [flag, value] = (args[i] ?? '').split('=', 2);
    const o = program.options.find((x) => x.long === flag || x.short === flag);
    if (!o) return args.slice(i);
    i += (o.required || o.optional) && value === undefined ? 2 : 1;
  }
};

const pathOf = (c: Command): string[] => {
  const names: string[] = [];
  for (let x: Command | null = c; x?.parent; x = x.parent) names.unshift(x.name());
  return names;
};

/** Parses `args` with a fresh command tree whose actions do nothing; answers the command that ran. */
const parse = async (args: readonly string[]): Promise<{ ran?: Command; error?: string }> => {
  const root = buildProgram();
  let ran: Command | undefined;
  const quiet = (c: Command): void => {
    c.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    if (c.commands.length === 0)
      c.action((...a: unknown[]) => {
        ran = a.at(-1) as Command;
      });
    c.commands.forEach(quiet);
  };
  quiet(root);
  try {
    await root.parseAsync(args, { from: 'user' });
    return ran ? { ran } : { error: 'no command ran' };
  } catch (e) {
    return { error: (e as Error).message };
  }
};

describe('cps --help', () => {
  it('covers the command tree', () => {
    expect(cases.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'cps',
        'cps app create',
        'cps service add-nodes',
        'cps platform join',
        'cps mysql connect',
        'cps mysql dump',
        'cps mysql load',
        'cps php versions',
        'cps php upload',
        'cps php enable',
        'cps php delete',
        'cps php download',
        'cps php config',
      ]),
    );
    expect(cases.map((c) => c.name)).not.toContain('cps supervisor');
  });

  it.each(cases)('$name shows examples of itself', async ({ name, path, cmd }) => {
    const help = helpOf(cmd);
    expect(help, `${name} --help`).toContain('\nExamples:\n');
    expect(help, `${name} --help`).toMatch(/^ {2}\$ cps /m);
    const lines = examplesIn(help);
    expect(lines.length, `${name}: examples`).toBeGreaterThan(0);
    for (const line of lines) {
      const args = cpsArgs(line);
      expect(args, `${name}: "${line}" runs cps`).toBeDefined();
      expect(afterGlobals(args ?? []).slice(0, path.length), `${name}: "${line}"`).toEqual(path);
      const r = await parse(args ?? []);
      expect(r.error, `${name}: "${line}" parses`).toBeUndefined();
      expect(pathOf(r.ran as Command).slice(0, path.length), `${name}: "${line}" runs it`).toEqual(path);
    }
  });
});

describe('deploy/docker/init.sh', () => {
  // the compose deployment's one-shot set-up runs `cps`: each invocation, its continuation lines
  // joined and shell variables standing for values, must parse against the command tree
  const script = readFileSync(
    fileURLToPath(new URL('../../../deploy/docker/init.sh', import.meta.url)),
    'utf8',
  ).replace(/\\\n\s*/g, '');
  const runs = script
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(?:[A-Z_]+=\S+\s+)*cps\s/.test(l));

  it('runs cps platform init, nats-config, export-join and join', () => {
    const subs = runs.map((l) =>
      afterGlobals(cpsArgs(l) ?? [])
        .slice(0, 2)
        .join(' '),
    );
    expect(subs).toEqual(['platform init', 'platform nats-config', 'platform export-join', 'platform join']);
  });

  it.each(runs)('parses: %s', async (line) => {
    const args = cpsArgs(line) ?? [];
    const r = await parse(args);
    expect(r.error, line).toBeUndefined();
    expect(pathOf(r.ran as Command), line).toEqual(afterGlobals(args).slice(0, 2));
  });
});
