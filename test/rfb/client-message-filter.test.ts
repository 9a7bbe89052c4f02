import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLIENT_MESSAGE_KINDS,
  CLIENT_MESSAGE_LIMITS,
  ClientMessageFilter,
  PSEUDO_ENCODING,
  resolveClientMessagePolicy,
  type ClientMessageKind,
  type ClientMessagePolicy,
  type ClipboardPolicy,
} from '../../src/rfb/index.js';
import { chunkings, hex } from './chunkings.js';
import { MESSAGES, OPEN, SESSION, VECTOR_NAMES, run, setEncodingsWithout, type VectorName } from './client-message-vectors.js';
import { clientStream, expectedForward } from './fuzz/client-stream.js';
import { Rng } from './fuzz/rng.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const { extendedClipboard: EXT_CLIP, extendedMouseButtons: EXT_MOUSE } = PSEUDO_ENCODING;
/** The largest head the filter may hold: a whole SetEncodings of the most encodings allowed. */
const MAX_HEAD = 4 + 4 * CLIENT_MESSAGE_LIMITS.maxEncodings;

/** The session's expected output: the named messages kept, SetEncodings as given, the final request. */
function expected(keep: readonly VectorName[], setEncodings: Buffer): Buffer {
  return Buffer.concat([
    ...VECTOR_NAMES.filter((n) => keep.includes(n)).map((n) => (n === 'setEncodings' ? setEncodings : MESSAGES[n])),
    hex`03 01 0000 0000 0400 0300`,
  ]);
}

function droppedCounts(names: readonly VectorName[]): Record<ClientMessageKind, number> {
  const counts = Object.fromEntries(CLIENT_MESSAGE_KINDS.map((k) => [k, 0])) as Record<ClientMessageKind, number>;
  for (const n of names) counts[n]++;
  return counts;
}

const VIEWER: VectorName[] = ['setPixelFormat', 'setEncodings', 'framebufferUpdateRequest', 'enableContinuousUpdates', 'clientFence', 'qemuAudio'];

const GOLDEN: { name: string; policy: ClientMessagePolicy; keep: VectorName[]; setEncodings: Buffer }[] = [
  {
    name: 'unrestricted: everything, byte for byte',
    policy: OPEN,
    keep: VECTOR_NAMES,
    setEncodings: MESSAGES.setEncodings,
  },
  {
    name: 'view-only, no clipboard: only what a viewer needs',
    policy: { viewOnly: true, clipboard: 'none', maxClipboardBytes: 1 << 20 },
    keep: VIEWER,
    setEncodings: setEncodingsWithout(EXT_MOUSE, EXT_CLIP),
  },
  {
    name: 'view-only, clipboard both: the console may still offer its clipboard (caps, request, peek)',
    policy: { viewOnly: true, clipboard: 'both', maxClipboardBytes: 1 << 20 },
    keep: [...VIEWER, 'clipboardCaps', 'clipboardRequest', 'clipboardPeek'],
    setEncodings: setEncodingsWithout(EXT_MOUSE),
  },
  {
    name: 'interactive, clipboard to-remote, no power, no resize',
    policy: { viewOnly: false, clipboard: 'to-remote', maxClipboardBytes: 1 << 20, allowPower: false, allowResize: false },
    keep: [...VIEWER, 'keyEvent', 'pointerEvent', 'qemuExtendedKeyEvent', 'clientCutText', 'clipboardCaps', 'clipboardNotify', 'clipboardProvide'],
    setEncodings: setEncodingsWithout(EXT_MOUSE, EXT_CLIP),
  },
  {
    name: 'interactive, clipboard to-browser, power and resize by default',
    policy: { viewOnly: false, clipboard: 'to-browser', maxClipboardBytes: 1 << 20 },
    keep: [...VIEWER, 'keyEvent', 'pointerEvent', 'qemuExtendedKeyEvent', 'clipboardCaps', 'clipboardRequest', 'clipboardPeek', 'xvp', 'setDesktopSize'],
    setEncodings: setEncodingsWithout(EXT_MOUSE),
  },
  {
    name: 'interactive, clipboard both but at most 4 bytes: only the small clipboard messages',
    policy: { viewOnly: false, clipboard: 'both', maxClipboardBytes: 4 },
    keep: VECTOR_NAMES.filter((n) => n !== 'clientCutText' && n !== 'clipboardProvide'),
    setEncodings: setEncodingsWithout(EXT_MOUSE),
  },
];

describe('ClientMessageFilter: golden vectors (issue 18)', () => {
  for (const g of GOLDEN) {
    it(`${g.name} (whole, byte at a time, split at every offset)`, () => {
      const want = expected(g.keep, g.setEncodings);
      const dropped = droppedCounts(VECTOR_NAMES.filter((n) => !g.keep.includes(n)));
      for (const { name, chunks } of chunkings(SESSION)) {
        const r = run(g.policy, chunks);
        expect(r.error, name).toBeNull();
        expect(r.out.toString('hex'), name).toBe(want.toString('hex'));
        expect(r.filter.bufferedBytes, name).toBe(0);
        const stats = r.filter.stats();
        expect(stats.dropped, name).toEqual(dropped);
        expect(stats.forwardedBytes, name).toBe(want.length);
        expect(stats.droppedBytes + stats.forwardedBytes, name).toBe(SESSION.length);
        expect(stats.encodingsRewritten, name).toBe(g.setEncodings === MESSAGES.setEncodings ? 0 : 1);
      }
    });
  }

  it('counts clipboard messages dropped for their size alone', () => {
    const r = run({ viewOnly: false, clipboard: 'both', maxClipboardBytes: 4 }, [SESSION]);
    expect(r.filter.stats().clipboardOversized).toBe(2); // "hello" (5) and the provide's 6 zlib bytes
    expect(r.filter.droppedMessages).toBe(2);
  });
});

describe('ClientMessageFilter: clipboard policy table', () => {
  const clipboardVectors = ['clientCutText', 'clipboardCaps', 'clipboardRequest', 'clipboardPeek', 'clipboardNotify', 'clipboardProvide'] as const;
  // Which clipboard messages reach the console, per policy (interactive, then view-only).
  const table: Record<ClipboardPolicy, [interactive: string[], viewOnly: string[]]> = {
    none: [[], []],
    'to-browser': [['clipboardCaps', 'clipboardRequest', 'clipboardPeek'], ['clipboardCaps', 'clipboardRequest', 'clipboardPeek']],
    'to-remote': [['clientCutText', 'clipboardCaps', 'clipboardNotify', 'clipboardProvide'], []],
    both: [[...clipboardVectors], ['clipboardCaps', 'clipboardRequest', 'clipboardPeek']],
  };
  for (const [clipboard, [interactive, viewOnly]] of Object.entries(table) as [ClipboardPolicy, [string[], string[]]][]) {
    for (const [view, passes] of [[false, interactive], [true, viewOnly]] as const) {
      it(`clipboard ${clipboard}${view ? ', view-only' : ''}: ${passes.join(', ') || 'nothing'}`, () => {
        for (const v of clipboardVectors) {
          const r = run({ viewOnly: view, clipboard, maxClipboardBytes: 1 << 20 }, [MESSAGES[v]]);
          expect(r.out.length > 0, v).toBe(passes.includes(v));
        }
      });
    }
  }

  it('removes Extended Clipboard from SetEncodings exactly when the console may not send to the browser', () => {
    for (const clipboard of ['none', 'to-browser', 'to-remote', 'both'] as const) {
      const rules = resolveClientMessagePolicy({ viewOnly: false, clipboard, maxClipboardBytes: 100 });
      expect(rules.removedEncodings.includes(EXT_CLIP), clipboard).toBe(clipboard === 'none' || clipboard === 'to-remote');
    }
  });
});

describe('ClientMessageFilter: streaming', () => {
  it('forwards an allowed chunk of whole messages as the same Buffer, without copying', () => {
    const chunk = Buffer.concat([MESSAGES.framebufferUpdateRequest, MESSAGES.keyEvent, MESSAGES.pointerEvent, MESSAGES.clientFence]);
    const r = run({ viewOnly: false, clipboard: 'none', maxClipboardBytes: 0 }, [chunk, MESSAGES.keyEvent]);
    expect(r.parts).toHaveLength(2);
    expect(r.parts[0]).toBe(chunk);
  });

  it('forwards what surrounds a dropped message as views of the chunk, not copies', () => {
    const chunk = Buffer.concat([MESSAGES.framebufferUpdateRequest, MESSAGES.keyEvent, MESSAGES.pointerEvent, MESSAGES.clientFence]);
    const r = run({ viewOnly: true, clipboard: 'none', maxClipboardBytes: 0 }, [chunk]);
    expect(r.parts.map((p) => p.toString('hex'))).toEqual([MESSAGES.framebufferUpdateRequest.toString('hex'), MESSAGES.clientFence.toString('hex')]);
    for (const p of r.parts) expect(p.buffer).toBe(chunk.buffer);
  });

  it('skips a 64 MiB ClientCutText as it streams by, holding nothing', () => {
    const size = 64 * 2 ** 20;
    const header = Buffer.from([6, 0, 0, 0, 0, 0, 0, 0]);
    header.writeUInt32BE(size, 4);
    const block = Buffer.alloc(64 * 1024, 0x41);
    const filter = new ClientMessageFilter({ viewOnly: false, clipboard: 'both', maxClipboardBytes: 1 << 20 });
    const parts: Buffer[] = [];
    // The header split too, so it is held for a moment; then 1024 blocks, then a key press.
    expect(filter.receive(header.subarray(0, 5), (b) => parts.push(b))).toBeNull();
    expect(filter.bufferedBytes).toBe(5);
    expect(filter.receive(header.subarray(5), (b) => parts.push(b))).toBeNull();
    for (let sent = 0; sent < size; sent += block.length) {
      expect(filter.receive(block, (b) => parts.push(b))).toBeNull();
      expect(filter.bufferedBytes).toBe(0);
    }
    expect(filter.receive(MESSAGES.keyEvent, (b) => parts.push(b))).toBeNull();
    expect(parts).toEqual([MESSAGES.keyEvent]);
    expect(filter.stats()).toMatchObject({ clipboardOversized: 1, droppedBytes: 8 + size, dropped: { clientCutText: 1 } });
  });

  it('passes a long allowed ClientCutText through as views of its chunks', () => {
    const text = Buffer.alloc(300_000, 0x42);
    const msg = Buffer.concat([hex`06 000000`, Buffer.from([0, 0x04, 0x93, 0xe0]), text]);
    const chunks = [msg.subarray(0, 100_000), msg.subarray(100_000, 200_000), msg.subarray(200_000)];
    const r = run({ viewOnly: false, clipboard: 'to-remote', maxClipboardBytes: 300_000 }, chunks);
    expect(r.parts).toEqual(chunks);
    expect(r.parts[1]).toBe(chunks[1]);
    expect(r.maxBuffered).toBe(0);
  });
});

describe('ClientMessageFilter: framing it refuses', () => {
  const failures: [string, Buffer][] = [
    ['unknown message type 1', hex`01 00 00 00`],
    ['gii (253), which noVNC does not send', hex`fd 80 0004 00000000`],
    ['unknown QEMU sub-type', hex`ff 02 0000`],
    ['unknown QEMU audio operation', hex`ff 01 0003`],
    ['SetEncodings with too many encodings', Buffer.from([2, 0, (CLIENT_MESSAGE_LIMITS.maxEncodings + 1) >> 8, (CLIENT_MESSAGE_LIMITS.maxEncodings + 1) & 0xff])],
  ];
  for (const [name, bad] of failures) {
    it(`${name}: RFB_ERR_CLIENT_PROTOCOL, what came before forwarded, later input ignored`, () => {
      for (const { name: how, chunks } of chunkings(Buffer.concat([MESSAGES.keyEvent, bad]))) {
        const filter = new ClientMessageFilter(OPEN);
        const r = run(filter, chunks);
        expect(r.error, how).toBe('RFB_ERR_CLIENT_PROTOCOL');
        expect(r.out, how).toEqual(MESSAGES.keyEvent);
        expect(filter.bufferedBytes, how).toBe(0);
        expect(filter.receive(MESSAGES.keyEvent, () => expect.fail('forwarded after failing'))?.code).toBe('RFB_ERR_CLIENT_PROTOCOL');
      }
    });
  }

  it('waits for the most encodings allowed without failing', () => {
    const n = CLIENT_MESSAGE_LIMITS.maxEncodings;
    const msg = Buffer.concat([Buffer.from([2, 0, n >> 8, n & 0xff]), Buffer.alloc(4 * n)]);
    const r = run(OPEN, [msg.subarray(0, 1000), msg.subarray(1000)]);
    expect(r.error).toBeNull();
    expect(r.out).toEqual(msg);
    expect(r.maxBuffered).toBe(1000);
  });
});

describe('ClientMessageFilter: ExtendedMouseButtons (issue 18)', () => {
  const encodings = hex`02 00 0001 fffffec4`; // ExtendedMouseButtons only
  const extendedPointer = hex`05 80 0010 0020 01`; // rfbproto: marker bit, then the high buttons

  it('unrestricted: listed, so a PointerEvent with the marker bit is 7 bytes', () => {
    const input = Buffer.concat([encodings, extendedPointer, MESSAGES.keyEvent]);
    for (const { name, chunks } of chunkings(input)) expect(run(OPEN, chunks).out, name).toEqual(input);
  });

  it('restricted: removed from SetEncodings, so a 7th byte cannot smuggle an xvp reboot past allowPower', () => {
    // A hostile client frames "05 80 ..." as 7 bytes, hoping we forward the 7th (fa) and a console
    // that never agreed to the extension reads fa 00 01 03 as xvp reboot. We frame 6, as it does.
    const input = Buffer.concat([encodings, hex`05 80 0010 0020`, MESSAGES.xvp]);
    const r = run({ viewOnly: false, clipboard: 'both', maxClipboardBytes: Infinity, allowPower: false }, [input]);
    expect(r.error).toBeNull();
    expect(r.out).toEqual(Buffer.concat([hex`02 00 0000`, hex`05 80 0010 0020`]));
    expect(r.filter.stats().dropped.xvp).toBe(1);
  });
});

describe('ClientMessageFilter: properties', () => {
  const policies = fc.record({
    viewOnly: fc.boolean(),
    clipboard: fc.constantFrom<ClipboardPolicy>('none', 'to-browser', 'to-remote', 'both'),
    maxClipboardBytes: fc.oneof(fc.integer({ min: 0, max: 2048 }), fc.constant(Infinity)),
    allowResize: fc.boolean(),
    allowPower: fc.boolean(),
  });
  const cuts = fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 64 });

  function* split(bytes: Buffer, sizes: number[]): Generator<Buffer> {
    let at = 0;
    for (const c of sizes) {
      if (at >= bytes.length) return;
      yield bytes.subarray(at, at + c);
      at += c;
    }
    if (at < bytes.length) yield bytes.subarray(at);
  }

  it('random bytes in any chunking: never throws, holds at most one head, output independent of the chunking', () => {
    const prefix = fc.constantFrom(Buffer.alloc(0), MESSAGES.setEncodings, hex`06 000000 7fffffff`, hex`06 000000 80000000 10000000`);
    fc.assert(
      fc.property(policies, prefix, fc.uint8Array({ maxLength: 2048 }), cuts, (policy, pre, body, sizes) => {
        const bytes = Buffer.concat([pre, body]);
        const whole = run(policy, [bytes]);
        const chunked = run(policy, split(bytes, sizes));
        expect(chunked.maxBuffered).toBeLessThanOrEqual(MAX_HEAD);
        expect(chunked.error).toBe(whole.error);
        expect(chunked.out).toEqual(whole.out);
      }),
      { numRuns: RUNS },
    );
  });

  it('generated message streams: the output is what the policy table says, in any chunking', () => {
    fc.assert(
      fc.property(policies, fc.integer(), fc.integer({ min: 0, max: 40 }), cuts, (policy, seed, count, sizes) => {
        const rules = resolveClientMessagePolicy(policy);
        const messages = clientStream(new Rng(seed), count, rules.unrestricted);
        const bytes = Buffer.concat(messages.map((m) => m.bytes));
        const want = expectedForward(messages, rules);
        const r = run(policy, split(bytes, sizes));
        expect(r.error).toBeNull();
        expect(r.out.toString('hex')).toBe(want.out.toString('hex'));
        for (const [kind, n] of Object.entries(r.filter.stats().dropped)) expect(n, kind).toBe(want.dropped[kind as ClientMessageKind] ?? 0);
      }),
      { numRuns: RUNS },
    );
  });

  it('with everything allowed, the output is the input exactly, in any chunking', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: 40 }), cuts, (seed, count, sizes) => {
        const bytes = Buffer.concat(clientStream(new Rng(seed), count, true).map((m) => m.bytes));
        const r = run(OPEN, split(bytes, sizes));
        expect(r.error).toBeNull();
        expect(r.out.equals(bytes)).toBe(true);
        expect(r.filter.droppedMessages).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('resolveClientMessagePolicy', () => {
  it('is unrestricted only when nothing can be dropped', () => {
    expect(resolveClientMessagePolicy(OPEN)).toMatchObject({ unrestricted: true, removedEncodings: [] });
    expect(resolveClientMessagePolicy({ ...OPEN, maxClipboardBytes: 2 ** 32 - 1 }).unrestricted).toBe(false);
    expect(resolveClientMessagePolicy({ ...OPEN, allowResize: false }).removedEncodings).toEqual([EXT_MOUSE]);
    expect(resolveClientMessagePolicy({ ...OPEN, viewOnly: true })).toMatchObject({ input: false, resize: false, power: false, clipboardToRemote: false, clipboardToBrowser: true });
  });

  it('throws on a policy our own code got wrong', () => {
    expect(() => new ClientMessageFilter({ ...OPEN, maxClipboardBytes: -1 })).toThrow(TypeError);
    expect(() => new ClientMessageFilter({ ...OPEN, maxClipboardBytes: Number.NaN })).toThrow(TypeError);
    expect(() => new ClientMessageFilter({ ...OPEN, clipboard: 'sideways' as ClipboardPolicy })).toThrow(TypeError);
  });
});
