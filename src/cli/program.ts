/**
 * The `livekexec` command tree. Each verb group lives in its own file and
 * registers itself here.
 */
import { Command } from 'commander';
import { errorJson } from './cli-exit.js';
import { registerDemoCommand } from './demo.js';
import { registerDeviceCommands } from './device.js';
import { registerFdtCommands } from './fdt.js';
import { registerKexecCommand } from './kexec.js';
import { registerKhoCommands } from './kho.js';
import { registerPkramCommands } from './pkram.js';
import { registerPmpoolCommands } from './pmpool.js';
import { registerStatusCommands } from './status.js';
import { packageVersion } from './version.js';

/** Whether the command line asks for JSON output (`--json` before any `--`). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

export function buildProgram(): Command {
  const program = new Command('livekexec')
    .description(
      "Keep a process's memory and open sockets alive across an in-place upgrade (Kexec HandOver for processes).",
    )
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError()
    // Usage errors read like every other error of the tool ("livekexec: ..."), or are JSON
    // under --json; subcommands inherit this.
    .configureOutput({
      outputError: (text, write) => {
        if (wantsJson(process.argv)) {
          const message = text.split('\n')[0].replace(/^error: /, '');
          process.stdout.write(errorJson(Object.assign(new Error(message), { code: 'EINVAL' })));
        } else {
          write(text.replace(/^error: /, 'livekexec: '));
        }
      },
    })
    .exitOverride();
  registerFdtCommands(program);
  registerDeviceCommands(program);
  registerPkramCommands(program);
  registerKhoCommands(program);
  registerKexecCommand(program);
  registerPmpoolCommands(program);
  registerStatusCommands(program);
  registerDemoCommand(program);
  return program;
}
