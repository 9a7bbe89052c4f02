import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliLogLevel } from '../config/index.js';
import { createLogger } from '../log.js';
import { isVncgateError } from '../errors.js';
import { PACKAGE_ROOT } from '../package-root.js';
import type { Command, CommandTable } from './command.js';
import { CONFIG_USAGE, configCommand } from './config.js';
import { PROBE_USAGE, probeCommand } from './probe.js';
import { SCREENSHOT_USAGE, screenshotCommand } from './screenshot.js';
import { SERVE_USAGE, serveCommand } from './serve.js';
import { TOKEN_USAGE, tokenCommand } from './token.js';
import { UsageError, type CliIo } from './io.js';

/** This installation's version, from its package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The proxy's own commands. */
const COMMANDS: CommandTable = {
  serve: { summary: [['serve', 'run the console proxy (HTTPS/WSS, console page, token API)']], usage: SERVE_USAGE, run: serveCommand },
  token: {
    summary: [
      ['token create', 'mint single-use console tokens in Redis (JSON lines)'],
      ['token revoke', 'revoke a console token'],
    ],
    usage: TOKEN_USAGE,
    run: tokenCommand,
  },
  probe: { summary: [['probe HOST:PORT', 'check a VNC console endpoint: handshake, security, TLS, ServerInit (JSON)']], usage: PROBE_USAGE, run: probeCommand },
  screenshot: { summary: [['screenshot', "save one frame of a console (HOST:PORT or an Ironic node) as PNG"]], usage: SCREENSHOT_USAGE, run: screenshotCommand },
  config: {
    summary: [
      ['config import', 'turn a nova.conf or ironic.conf into a vncgate configuration (YAML)'],
      ['config check', 'validate a configuration, reporting every problem at once'],
    ],
    usage: CONFIG_USAGE,
    run: configCommand,
  },
};

export type MainOptions = {
  /**
   * The tools' commands (demo, loadtest), which live in tools/ above src/: src/ never imports
   * tools/, so the entry point (bin/vncgate.js) passes them in. Listed under "Tools" in `--help`.
   */
  readonly tools?: CommandTable;
};

function usage(tools: CommandTable): string {
  const section = (table: CommandTable): string =>
    Object.values(table)
      .flatMap((c) => c.summary)
      .map(([invocation, does]) => `  ${invocation.padEnd(17)} ${does}`)
      .join('\n');
  return [
    'Usage: vncgate <command> [options]',
    '',
    'Commands:',
    section(COMMANDS),
    ...(Object.keys(tools).length > 0 ? ['', 'Tools:', section(tools)] : []),
    '',
    'Run "vncgate <command> --help" for a command\'s options; "vncgate --version" prints the version.',
    '',
  ].join('\n');
}

export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const tools = options.tools ?? {};
  const io: CliIo = {
    out: (value) => process.stdout.write(`${JSON.stringify(value)}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    log: createLogger({ level: cliLogLevel() }),
  };
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage(tools));
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  // Own properties only: `vncgate toString` is an unknown command, not Object.prototype's.
  const cmd: Command | undefined = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : Object.hasOwn(tools, name) ? tools[name] : undefined;
  if (!cmd) {
    io.err(`vncgate: unknown command ${JSON.stringify(name)}\n\n${usage(tools)}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      io.err(`vncgate ${name}: ${(err as Error).message}\n\n${cmd.usage}`);
      return 2;
    }
    if (isVncgateError(err)) {
      // Configuration and environment problems: the message is for the operator.
      io.err(`vncgate ${name}: ${err.code}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
