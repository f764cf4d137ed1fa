import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// module hooks of the child: a `.js` import from a `.ts` file finds its `.ts` sibling, and `.ts`
// files are transpiled one at a time (the repository compiles with verbatimModuleSyntax, so a
// file needs nothing from the others to be transpiled)
const HOOKS = `
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
let ts;
export async function initialize(data) {
  ts = (await import(data.typescript)).default;
}
export async function resolve(specifier, context, next) {
  if (/^\\.\\.?\\//.test(specifier) && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const sibling = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
    if (existsSync(fileURLToPath(sibling))) return { url: sibling.href, shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const fileName = fileURLToPath(url);
  const out = ts.transpileModule(readFileSync(fileName, 'utf8'), {
    fileName,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      useDefineForClassFields: false,
      inlineSourceMap: true,
    },
  });
  return { format: 'module', source: out.outputText, shortCircuit: true };
}
`;

const register = (): string => {
  const typescript = pathToFileURL(createRequire(import.meta.url).resolve('typescript')).href;
  const hooks = `data:text/javascript,${encodeURIComponent(HOOKS)}`;
  const code = `import { register } from 'node:module'; register(${JSON.stringify(hooks)}, { data: { typescript: ${JSON.stringify(typescript)} } });`;
  return `data:text/javascript,${encodeURIComponent(code)}`;
};

/**
 * The command line (the node binary first) that runs a TypeScript entry of this repository from its
 * source, as the int tier runs it: workspace packages by their `@cps/source` entries, nothing from
 * `dist`. For a program another program starts (a stand-in machine's node, say).
 */
export const sourceCommand = (entry: string, args: readonly string[] = []): string[] => [
  process.execPath,
  '--conditions=@cps/source',
  '--enable-source-maps',
  '--import',
  register(),
  entry,
  ...args,
];

/**
 * Runs a TypeScript entry of this repository in a new node process from its source (see
 * {@link sourceCommand}). For tests whose parties must be separate processes (their own event loop,
 * clock reads and connections).
 */
export const spawnSource = (entry: string, args: readonly string[], o: SpawnOptions = {}): ChildProcess => {
  const [node, ...rest] = sourceCommand(entry, args);
  return spawn(node as string, rest, o);
};
