import type { CommandTable } from '../../src/cli/command.js';
import { DEMO_USAGE, demoCommand } from './demo.js';
import { LOADTEST_USAGE, loadtestCommand } from './loadtest.js';

/**
 * The tools' commands. bin/vncgate.js hands them to the proxy's `main` (src/ never imports
 * tools/); a build without tools/ gets stand-ins that say so (src/cli/command.ts).
 */
export const TOOL_COMMANDS: CommandTable = {
  demo: { summary: [['demo', 'run vncgate with a demo VNC console and print a console URL']], usage: DEMO_USAGE, run: demoCommand },
  loadtest: {
    summary: [['loadtest', 'drive console sessions through vncgate; setup rate, throughput, latency, RSS (JSON)']],
    usage: LOADTEST_USAGE,
    run: loadtestCommand,
  },
};
