#!/usr/bin/env node
// Entry point, above both src/ (the proxy) and tools/ (the demo, the load tester, the synthetic VNC
// server): it composes the command table. src/ never imports tools/, so the tools' commands come in
// from here. The compiled code lives in dist/src/ and dist/tools/ (npm run build). A build without
// dist/tools/ (the container image ships the proxy only) still lists `demo` and `loadtest` in
// --help; running one says it is not in this build and exits 69.
import { existsSync } from 'node:fs';
import { commandsNotInThisBuild } from '../dist/src/cli/command.js';
import { main } from '../dist/src/cli/main.js';

const toolsModule = new URL('../dist/tools/cli/commands.js', import.meta.url);
const tools = existsSync(toolsModule) ? (await import(toolsModule.href)).TOOL_COMMANDS : commandsNotInThisBuild(['demo', 'loadtest']);

main(process.argv.slice(2), { tools }).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`vncgate: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 70;
  },
);
