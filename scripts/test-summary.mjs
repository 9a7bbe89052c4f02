#!/usr/bin/env node
// Prints vitest's JSON report as one plain closing line, "N passed, N failed, N skipped", so any
// CI reading the log sees how many tests ran. Exits with the status it is given (vitest's), or 1
// when no test ran or any was skipped.
import { readFileSync } from 'node:fs';

const status = Number(process.argv[3] ?? 0);
try {
  const r = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  process.stdout.write(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped\n`);
  if (r.numTotalTests === 0) {
    process.stderr.write('no test ran\n');
    process.exit(status || 1);
  }
  // Every tier runs against real peers that .ci/run installs; a test that did not run is a
  // failure to see, never a pass (the suites fail rather than skip when a peer is missing).
  if (skipped > 0) {
    process.stderr.write(`FAILED: ${skipped} test(s) skipped or todo - every test tier must run\n`);
    process.exit(status || 1);
  }
} catch (err) {
  process.stderr.write(`test summary unavailable: ${err.message}\n`);
  process.exit(status || 1);
}
process.exit(status);
