import { printError } from './output.js';
import { buildProgram } from './program.js';

// exit codes: 0 ok, 1 failed, 2 usage
buildProgram()
  .parseAsync()
  .catch((e: unknown) => {
    const code = (e as { code?: string; exitCode?: number }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help')
        process.exit(0);
      process.exit(2);
    }
    printError(e);
    process.exit(1);
  });
