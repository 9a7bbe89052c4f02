import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/rfb/index.js';
import { runFuzz } from './fuzz/run.js';

/**
 * Issue 15: the hostile-client tier's fuzzing of both RFB roles, a million generated inputs each
 * (FUZZ_INPUTS changes it, FUZZ_SEED varies the inputs; the default seed keeps CI reproducible).
 * Inputs are structured to get deep — every version, security lists, VeNCrypt negotiation,
 * VncAuth, SecurityResult reasons and ServerInit names of every declared length — then mutated,
 * truncated and fed in random chunkings. No engine may throw, hold more than it may, wait on a
 * length it should refuse, or (for unmutated transcripts) do other than the recorded outcome; what
 * follows security must be handed over whole. Issue 18 added the client message filter as a fourth
 * role: generated noVNC message streams under random policies, checked against the policy table;
 * and the shared console's server message framer as a fifth: generated server streams, checked against the boundaries they were built with. A finding's seed and index regenerate its input
 * (test/rfb/fuzz/stats.ts inputRng). scripts/fuzz-rfb.mts prints the same run as JSON.
 */
const INPUTS = Number(process.env.FUZZ_INPUTS ?? 1_000_000);
const SEED = Number(process.env.FUZZ_SEED ?? 15);

describe('fuzz: a million inputs per RFB role', () => {
  it(`client role, server role, ServerInit reader, client message filter and server message framer: ${INPUTS} inputs each, no crash, no violation`, async () => {
    const figures = await runFuzz({ inputs: INPUTS, seed: SEED, workers: 2 });
    for (const s of figures.roles) {
      console.log(
        `fuzz ${s.role} role: ${s.inputs} inputs, ${s.crashes} crashes, ${s.violations} violations, ${s.established} established, ${s.failed} failed, ${s.pending} need-more; oracle checked ${s.oracleChecked}; max buffered ${s.maxBufferedBytes} B; worker ms ${s.workerMs.join('+')}`,
      );
    }
    console.log(`fuzz: seed ${figures.seed}, ${figures.workers} workers, ${figures.wallMs} ms wall; worker heaps after the run ${figures.workerHeapUsedBytes.map((b) => `${(b / 2 ** 20).toFixed(1)} MiB`).join(', ')}`);

    for (const s of figures.roles) {
      expect(s.findings, `${s.role}: first findings`).toEqual([]);
      expect(s.inputs).toBe(INPUTS);
      expect(s.crashes).toBe(0);
      expect(s.violations).toBe(0);
      expect(s.maxBufferedBytes).toBeLessThanOrEqual(LIMITS.maxHandshakeBufferBytes);
    }
    for (const heap of figures.workerHeapUsedBytes) expect(heap).toBeLessThan(256 * 2 ** 20);

    // The generator must keep reaching every outcome, or the figures above mean less than they say.
    const [client, server, serverInit, clientFilter, serverFramer] = figures.roles;
    if (INPUTS >= 100_000) {
      for (const s of [client!, server!, serverInit!, clientFilter!, serverFramer!]) {
        expect(s.established / s.inputs).toBeGreaterThan(0.05);
        expect(s.failed / s.inputs).toBeGreaterThan(0.05);
        expect(s.pending / s.inputs).toBeGreaterThan(0.01);
        expect(s.oracleChecked / s.inputs).toBeGreaterThan(0.25);
      }
      expect(Object.keys(client!.codes).sort()).toEqual([
        'RFB_ERR_AUTH_FAILED',
        'RFB_ERR_CREDENTIALS_MISSING',
        'RFB_ERR_NOT_RFB',
        'RFB_ERR_NO_COMMON_SECURITY',
        'RFB_ERR_PROTOCOL',
        'RFB_ERR_SERVER_REFUSED',
        'RFB_ERR_UNSUPPORTED_VERSION',
        'RFB_ERR_VENCRYPT_REJECTED',
        'RFB_ERR_VENCRYPT_VERSION',
      ]);
      expect(server!.codes).toHaveProperty('RFB_ERR_CLIENT_PROTOCOL');
      expect(server!.codes).toHaveProperty('RFB_ERR_CLIENT_AUTH');
      expect(serverInit!.codes).toHaveProperty('RFB_ERR_LIMIT');
      expect(Object.keys(clientFilter!.codes)).toEqual(['RFB_ERR_CLIENT_PROTOCOL']);
      expect(serverFramer!.codes).toHaveProperty('RFB_ERR_PROTOCOL');
    }
  }, 600_000);
});
