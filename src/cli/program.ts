/**
 * The `livekexec` command tree. Each verb group lives in its own file and
 * registers itself here.
 */
import { Command } from 'commander';
import { registerDemoCommand } from './demo.js';
import { registerDeviceCommands } from './device.js';
import { registerFdtCommands } from './fdt.js';
import { registerKexecCommand } from './kexec.js';
import { registerKhoCommands } from './kho.js';
import { registerPkramCommands } from './pkram.js';
import { registerPmpoolCommands } from './pmpool.js';
import { registerStatusCommands } from './status.js';
import { packageVersion } from './version.js';

export function buildProgram(): Command {
  const program = new Command('livekexec')
    .description(
      "Keep a process's memory and open sockets alive across an in-place upgrade (Kexec HandOver for processes).",
    )
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError()
    // Usage errors read like every other error of the tool ("livekexec: ..."); subcommands inherit this.
    .configureOutput({
      outputError: (text, write) => write(text.replace(/^error: /, 'livekexec: ')),
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
