import type { CliIo } from './io.js';

/** One `vncgate` command: what `--help` lists, its own usage text, and what it runs. */
export type Command = {
  /** Lines for `vncgate --help`: the invocation and what it does (`token` has two: create, revoke). */
  readonly summary: readonly (readonly [invocation: string, does: string])[];
  /** `vncgate <command> --help`; printed after a usage error too. */
  readonly usage: string;
  /** Exit status: 0 done, 1 failed, 2 bad usage (thrown as UsageError). */
  readonly run: (argv: string[], io: CliIo) => Promise<number>;
};

export type CommandTable = Readonly<Record<string, Command>>;

/** sysexits.h EX_UNAVAILABLE: the command exists but this installation does not include it. */
export const EXIT_NOT_IN_THIS_BUILD = 69;

/**
 * Stand-ins for tool commands a build leaves out (the container image ships the proxy only):
 * `--help` still lists them, and running one says why it cannot, instead of "unknown command".
 */
export function commandsNotInThisBuild(names: readonly string[]): CommandTable {
  const table: Record<string, Command> = {};
  for (const name of names) {
    const why =
      `vncgate ${name}: not in this build. The tools (the demo, the load tester) are left out of this ` +
      `installation, as they are of the container image; run it from a source checkout: npm ci && ` +
      `npm run build && bin/vncgate.js ${name}\n`;
    table[name] = {
      summary: [[name, '(not in this build)']],
      usage: why,
      run: async (_argv, io) => {
        io.err(why.trimEnd());
        return EXIT_NOT_IN_THIS_BUILD;
      },
    };
  }
  return table;
}
