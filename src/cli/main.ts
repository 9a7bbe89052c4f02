import { readFileSync } from 'node:fs';
import { cliLogLevel } from '../config/index.js';
import { createLogger } from '../log.js';
import { isVncgateError } from '../errors.js';
import { CONFIG_USAGE, configCommand } from './config.js';
import { DEMO_USAGE, demoCommand } from './demo.js';
import { LOADTEST_USAGE, loadtestCommand } from './loadtest.js';
import { PROBE_USAGE, probeCommand } from './probe.js';
import { SERVE_USAGE, serveCommand } from './serve.js';
import { TOKEN_USAGE, tokenCommand } from './token.js';
import { UsageError, type CliIo } from './io.js';

const USAGE = `Usage: vncgate <command> [options]

Commands:
  serve             run the console proxy (HTTPS/WSS, console page, token API)
  demo              run vncgate with a demo VNC console and print a console URL
  token create      mint single-use console tokens in Redis (JSON lines)
  token revoke      revoke a console token
  probe HOST:PORT   check a VNC console endpoint: handshake, security, TLS, ServerInit (JSON)
  loadtest          drive console sessions through vncgate; setup rate, throughput, latency, RSS (JSON)
  config import     turn a nova.conf or ironic.conf into a vncgate configuration (YAML)
  config check      validate a configuration, reporting every problem at once

Run "vncgate <command> --help" for a command's options; "vncgate --version" prints the version.
`;

/** This installation's version, from its package.json (dist/cli/ → the package root). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

type Command = { usage: string; run: (argv: string[], io: CliIo) => Promise<number> };

const COMMANDS: Record<string, Command> = {
  serve: { usage: SERVE_USAGE, run: serveCommand },
  demo: { usage: DEMO_USAGE, run: demoCommand },
  config: { usage: CONFIG_USAGE, run: configCommand },
  token: { usage: TOKEN_USAGE, run: tokenCommand },
  probe: { usage: PROBE_USAGE, run: probeCommand },
  loadtest: { usage: LOADTEST_USAGE, run: loadtestCommand },
};

export async function main(argv: string[]): Promise<number> {
  const io: CliIo = {
    out: (value) => process.stdout.write(`${JSON.stringify(value)}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    log: createLogger({ level: cliLogLevel() }),
  };
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    io.err(`vncgate: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
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
