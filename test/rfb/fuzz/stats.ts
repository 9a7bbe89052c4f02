import { LIMITS } from '../../../src/rfb/index.js';
import { Rng } from './rng.js';
import type { Decision } from './script.js';

export type Role = 'client' | 'server' | 'serverInit' | 'clientFilter' | 'serverFramer';

/** Something the fuzzer found: enough to reproduce it (`seed` and `index` regenerate the input). */
export type Finding = { role: Role; seed: number; index: number; kind: 'crash' | 'violation'; message: string; inputHex: string; inputLength: number };

export type RoleStats = {
  role: Role;
  inputs: number;
  /** An engine threw on peer input. */
  crashes: number;
  /** An invariant or the oracle did not hold. */
  violations: number;
  established: number;
  failed: number;
  /** Ended waiting for more bytes (within its bounds). */
  pending: number;
  /** Inputs whose outcome the oracle predicted and checked (unmutated transcripts). */
  oracleChecked: number;
  /** Failures by code. */
  codes: Record<string, number>;
  /** The largest bufferedBytes seen after any receive(). */
  maxBufferedBytes: number;
  bytesFed: number;
  findings: Finding[];
};

export function emptyStats(role: Role): RoleStats {
  return { role, inputs: 0, crashes: 0, violations: 0, established: 0, failed: 0, pending: 0, oracleChecked: 0, codes: {}, maxBufferedBytes: 0, bytesFed: 0, findings: [] };
}

export function mergeStats(a: RoleStats, b: RoleStats): RoleStats {
  const codes = { ...a.codes };
  for (const [k, v] of Object.entries(b.codes)) codes[k] = (codes[k] ?? 0) + v;
  return {
    role: a.role,
    inputs: a.inputs + b.inputs,
    crashes: a.crashes + b.crashes,
    violations: a.violations + b.violations,
    established: a.established + b.established,
    failed: a.failed + b.failed,
    pending: a.pending + b.pending,
    oracleChecked: a.oracleChecked + b.oracleChecked,
    codes,
    maxBufferedBytes: Math.max(a.maxBufferedBytes, b.maxBufferedBytes),
    bytesFed: a.bytesFed + b.bytesFed,
    findings: [...a.findings, ...b.findings].slice(0, MAX_FINDINGS),
  };
}

const MAX_FINDINGS = 10;

/** An invariant that did not hold; counted as a violation, not a crash. */
export class Violation extends Error {
  override readonly name = 'Violation';
}

/** `message` may be a function: the hot paths build their text only when a check fails. */
export function check(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new Violation(typeof message === 'string' ? message : message());
}

export function checkBuffered(stats: RoleStats, buffered: number, bound: number, where: () => string): void {
  if (buffered > stats.maxBufferedBytes) stats.maxBufferedBytes = buffered;
  check(buffered <= LIMITS.maxHandshakeBufferBytes, () => `${where()}: bufferedBytes ${buffered} over the handshake limit`);
  check(buffered <= bound, () => `${where()}: bufferedBytes ${buffered} over the ${bound} this state may hold`);
}

export type Outcome = { outcome: 'established' | 'failed' | 'pending'; code: string | null };

/** What an unmutated transcript must lead to once its first `delivered` bytes have arrived. */
export function expected(decision: Decision, delivered: number): Outcome {
  return delivered >= decision.at ? decision : { outcome: 'pending', code: null };
}

export function checkOutcome(stats: RoleStats, got: Outcome, want: Outcome): void {
  stats.oracleChecked++;
  check(got.outcome === want.outcome && got.code === want.code, () => `expected ${want.outcome} ${want.code ?? ''}, got ${got.outcome} ${got.code ?? ''}`);
}

export function count(stats: RoleStats, got: Outcome): void {
  stats[got.outcome]++;
  if (got.code) stats.codes[got.code] = (stats.codes[got.code] ?? 0) + 1;
}

/** The random source for input `index` of a run seeded `seed`: any input can be regenerated alone. */
export function inputRng(seed: number, index: number): Rng {
  return new Rng(Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ index);
}

/** Runs one input, turning a throw into a crash or violation finding. */
export function guarded(stats: RoleStats, seed: number, index: number, input: () => Buffer, body: () => void): void {
  stats.inputs++;
  try {
    body();
  } catch (err) {
    const violation = err instanceof Violation;
    if (violation) stats.violations++;
    else stats.crashes++;
    if (stats.findings.length < MAX_FINDINGS) {
      const bytes = input();
      stats.findings.push({
        role: stats.role,
        seed,
        index,
        kind: violation ? 'violation' : 'crash',
        message: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        inputHex: bytes.subarray(0, 512).toString('hex'),
        inputLength: bytes.length,
      });
    }
  }
}
