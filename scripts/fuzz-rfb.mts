/**
 * `npx tsx scripts/fuzz-rfb.mts [--inputs 1000000] [--seed 15] [--workers 2] [--roles client,server,serverInit,clientFilter,serverFramer]`
 *
 * The RFB engines' fuzz run (issue 15) outside vitest, for figures to quote: the same generator,
 * invariants and oracle as test/rfb/fuzz-million.test.ts. Prints one JSON object to stdout (inputs,
 * crashes, violations and outcomes per role, wall time, the first findings with the seed and
 * index that regenerate each input); exits 1 if anything was found.
 */
import { parseArgs } from 'node:util';
import { runFuzz } from '../test/rfb/fuzz/run.js';
import type { Role } from '../test/rfb/fuzz/stats.js';

const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '15' },
    workers: { type: 'string', default: '2' },
    roles: { type: 'string', default: 'client,server,serverInit,clientFilter,serverFramer' },
  },
});

const figures = await runFuzz({
  inputs: Number(values.inputs),
  seed: Number(values.seed),
  workers: Number(values.workers),
  roles: values.roles.split(',') as Role[],
});
const command = `npx tsx scripts/fuzz-rfb.mts --inputs ${values.inputs} --seed ${values.seed} --workers ${values.workers} --roles ${values.roles}`;
console.log(JSON.stringify({ command, node: process.version, ...figures }, null, 2));
process.exitCode = figures.roles.some((r) => r.crashes + r.violations > 0) ? 1 : 0;
