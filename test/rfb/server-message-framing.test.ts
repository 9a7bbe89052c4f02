import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServerMessageFramer, SERVER_MESSAGE_LIMITS, type ServerMessageSink } from '../../src/rfb/server-message-framing.js';
import { chunkings, hex } from './chunkings.js';
import { GOLDEN, stream, type Message, type Rect } from './server-message-vectors.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

type Seen = { ends: { type: number; end: number }[]; sizes: [number, number][]; cursors: string[]; error: string | null };

/** Feeds `chunks` to a fresh framer; ends are turned into offsets in the whole stream. */
function feed(chunks: readonly Buffer[]): Seen {
  const f = new ServerMessageFramer(4);
  const seen: Seen = { ends: [], sizes: [], cursors: [], error: null };
  let base = 0;
  const sink: ServerMessageSink = {
    messageEnd: (type, end) => seen.ends.push({ type, end: base + end }),
    desktopSize: (w, h) => seen.sizes.push([w, h]),
    cursor: (rect) => seen.cursors.push(rect.toString('hex')),
  };
  for (const c of chunks) {
    const e = f.receive(c, sink);
    if (e) {
      seen.error = e.code;
      break;
    }
    base += c.length;
  }
  return seen;
}

describe('ServerMessageFramer: golden vectors', () => {
  const { bytes, ends } = stream(GOLDEN);
  const whole = feed([bytes]);

  it('finds every message boundary, size change and cursor of the golden session', () => {
    expect(whole.error).toBeNull();
    expect(whole.ends).toEqual(ends);
    expect(whole.sizes).toEqual([
      [640, 480],
      [800, 600],
    ]);
    expect(whole.cursors).toHaveLength(1);
    // The cursor rectangle is passed whole: header (3x2 at 2,3, encoding -239) and 3*2*4 + 1*2 bytes.
    expect(whole.cursors[0]!.slice(0, 24)).toBe('000200030003000200000000'.slice(0, 16) + 'ffffff11');
    expect(whole.cursors[0]!.length / 2).toBe(12 + 3 * 2 * 4 + 2);
  });

  it('gives the same result in every chunking', () => {
    for (const { name, chunks } of chunkings(bytes)) expect(feed(chunks), name).toEqual(whole);
  });

  it('is at a boundary exactly between messages', () => {
    const f = new ServerMessageFramer(4);
    const sink: ServerMessageSink = { messageEnd: () => {}, desktopSize: () => {}, cursor: () => {} };
    const boundaries = new Set([0, ...ends.map((e) => e.end)]);
    for (let i = 0; i < bytes.length; i++) {
      expect(f.atBoundary, `offset ${i}`).toBe(boundaries.has(i));
      f.receive(bytes.subarray(i, i + 1), sink);
    }
    expect(f.atBoundary).toBe(true);
  });

  it('leaves the size alone on a failed ExtendedDesktopSize (non-zero status)', () => {
    const s = stream([{ kind: 'update', rects: [{ kind: 'extendedDesktopSize', w: 1, h: 1, status: 3, screens: 0 }] }]);
    expect(feed([s.bytes])).toMatchObject({ sizes: [], ends: s.ends, error: null });
  });

  it('passes a cursor larger than it keeps on without keeping it', () => {
    const s = stream([{ kind: 'update', rects: [{ kind: 'cursor', w: 200, h: 200 }] }, { kind: 'bell' }]);
    expect(12 + 200 * 200 * 4).toBeGreaterThan(SERVER_MESSAGE_LIMITS.maxCursorBytes);
    expect(feed([s.bytes])).toMatchObject({ cursors: [], ends: s.ends, error: null });
  });
});

describe('ServerMessageFramer: what it refuses', () => {
  it.each([
    ['an unknown message type', hex`07`, 'RFB_ERR_PROTOCOL'],
    ['an encoding it was not asked for (ZRLE)', hex`00 00 0001  0000 0000 0010 0010 00000010`, 'RFB_ERR_PROTOCOL'],
    ['Tight', hex`00 00 0001  0000 0000 0010 0010 00000007`, 'RFB_ERR_PROTOCOL'],
    ['an RRE rectangle with more subrectangles than pixels', hex`00 00 0001  0000 0000 0002 0002 00000002  00000005 00000000`, 'RFB_ERR_PROTOCOL'],
    ['an oversized ServerCutText', hex`03 000000 7fffffff`, 'RFB_ERR_LIMIT'],
    ['an oversized extended ServerCutText', hex`03 000000 80000001`, 'RFB_ERR_LIMIT'],
  ])('%s', (_name, bytes, code) => {
    for (const { name, chunks } of chunkings(bytes)) expect(feed(chunks).error, name).toBe(code);
  });

  it('stays failed: later input changes nothing', () => {
    const f = new ServerMessageFramer(4);
    const ends: number[] = [];
    const sink: ServerMessageSink = { messageEnd: (_t, e) => ends.push(e), desktopSize: () => {}, cursor: () => {} };
    expect(f.receive(hex`07`, sink)?.code).toBe('RFB_ERR_PROTOCOL');
    expect(f.receive(hex`02 02`, sink)?.code).toBe('RFB_ERR_PROTOCOL');
    expect(ends).toEqual([]);
    expect(f.atBoundary).toBe(false);
  });
});

const dim = fc.integer({ min: 0, max: 40 });
const rectArb: fc.Arbitrary<Rect> = fc.oneof(
  fc.record({ kind: fc.constant('raw' as const), w: dim, h: dim }),
  fc.record({ kind: fc.constant('copyRect' as const), w: dim, h: dim }),
  fc.record({ w: fc.integer({ min: 1, max: 20 }), h: fc.integer({ min: 1, max: 20 }), n: fc.nat(100) }).map(({ w, h, n }) => ({ kind: 'rre' as const, w, h, subrects: n % (w * h + 1) })),
  fc.record({ kind: fc.constant('hextile' as const), w: dim, h: dim, subencodings: fc.array(fc.nat(31), { maxLength: 8 }), counts: fc.array(fc.nat(255), { maxLength: 4 }) }),
  fc.record({ kind: fc.constant('cursor' as const), w: fc.nat(33), h: fc.nat(33) }),
  fc.record({ kind: fc.constant('desktopSize' as const), w: fc.nat(4000), h: fc.nat(4000) }),
  fc.record({ kind: fc.constant('extendedDesktopSize' as const), w: fc.nat(4000), h: fc.nat(4000), status: fc.nat(4), screens: fc.nat(4) }),
  fc.constant({ kind: 'qemuKey' as const }),
);
const messageArb: fc.Arbitrary<Message> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('update' as const), rects: fc.array(rectArb, { maxLength: 5 }), lastRect: fc.boolean() }) },
  fc.record({ kind: fc.constant('colourMap' as const), colours: fc.nat(20) }),
  fc.constant({ kind: 'bell' as const }),
  fc.record({ kind: fc.constant('cutText' as const), length: fc.nat(300), extended: fc.boolean() }),
  fc.record({ kind: fc.constant('fence' as const), payload: fc.nat(255) }),
  fc.constant({ kind: 'xvp' as const }),
  fc.constant({ kind: 'endOfContinuousUpdates' as const }),
);

/** Cuts `bytes` at the given offsets (sorted, deduplicated, inside the stream). */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((a) => a % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

describe('ServerMessageFramer: properties', () => {
  it('finds exactly the boundaries the messages were built with, in any chunking', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 12 }), (messages, at) => {
        const s = stream(messages);
        const seen = feed(cut(s.bytes, at));
        expect(seen.error).toBeNull();
        expect(seen.ends).toEqual(s.ends);
        expect(seen).toEqual(feed([s.bytes]));
      }),
      { numRuns: RUNS },
    );
  });

  it('never throws on arbitrary bytes, and never reports a boundary past what it was fed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(), { maxLength: 6 }), (raw, at) => {
        const bytes = Buffer.from(raw);
        const seen = feed(cut(bytes, at));
        for (const e of seen.ends) expect(e.end).toBeLessThanOrEqual(bytes.length);
        expect(seen.ends.map((e) => e.end)).toEqual([...seen.ends.map((e) => e.end)].sort((a, b) => a - b));
      }),
      { numRuns: RUNS },
    );
  });
});
