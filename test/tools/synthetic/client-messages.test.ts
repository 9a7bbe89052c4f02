import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientMessageReader, type ClientMessage } from '../../../tools/synthetic/client-messages.js';
import { MESSAGE_LIMITS } from '../../../tools/synthetic/constants.js';
import { chunkings, hex } from '../../rfb/chunkings.js';

function feed(chunks: readonly Buffer[]): { messages: ClientMessage[]; reader: ClientMessageReader } {
  const reader = new ClientMessageReader();
  const messages = chunks.flatMap((c) => reader.receive(c));
  return { messages, reader };
}

const SESSION = hex`
  00 000000                 # SetPixelFormat (§7.5.1), padding
  20 18 00 01 00ff 00ff 00ff 00 08 10 000000   # 32 bpp, depth 24, LE, true colour, 255/255/255, shifts 0/8/16
  02 00 0003                # SetEncodings (§7.5.2), 3 encodings
  00000000 ffffff21 00000007   # Raw, DesktopSize (-223), Tight
  03 00 0000 0000 0400 0300 # FramebufferUpdateRequest, non-incremental, 1024×768
  04 01 0000 00000068       # KeyEvent down 'h'
  04 00 0000 00000068       # KeyEvent up 'h'
  05 01 0010 0020           # PointerEvent button 1 at 16,32
  06 000000 00000005 "hello"   # ClientCutText, 5 bytes
  03 01 0001 0002 0003 0004 # FramebufferUpdateRequest, incremental
`;

const EXPECTED: ClientMessage[] = [
  {
    type: 'setPixelFormat',
    pixelFormat: {
      bitsPerPixel: 32,
      depth: 24,
      bigEndian: false,
      trueColour: true,
      redMax: 255,
      greenMax: 255,
      blueMax: 255,
      redShift: 0,
      greenShift: 8,
      blueShift: 16,
    },
  },
  { type: 'setEncodings', encodings: [0, -223, 7] },
  { type: 'framebufferUpdateRequest', incremental: false, rect: { x: 0, y: 0, width: 1024, height: 768 } },
  { type: 'keyEvent', down: true, keysym: 0x68 },
  { type: 'keyEvent', down: false, keysym: 0x68 },
  { type: 'pointerEvent', buttonMask: 1, x: 16, y: 32 },
  { type: 'clientCutText', length: 5 },
  { type: 'framebufferUpdateRequest', incremental: true, rect: { x: 1, y: 2, width: 3, height: 4 } },
];

describe('ClientMessageReader', () => {
  for (const { name, chunks } of chunkings(SESSION)) {
    it(`parses every §7.5 message (${name})`, () => {
      const { messages, reader } = feed(chunks);
      expect(messages).toEqual(EXPECTED);
      expect(reader.bufferedBytes).toBe(0);
    });
  }

  it('fails on an unknown message type and then ignores input', () => {
    const reader = new ClientMessageReader();
    expect(reader.receive(hex`04 01 0000 00000061 fa 00 01 02`)).toEqual([
      { type: 'keyEvent', down: true, keysym: 0x61 },
      expect.objectContaining({ type: 'failed', error: expect.objectContaining({ code: 'RFB_ERR_CLIENT_PROTOCOL' }) }),
    ]);
    expect(reader.receive(hex`04 01 0000 00000061`)).toEqual([]);
    expect(reader.bufferedBytes).toBe(0);
  });

  it('fails on too many encodings before waiting for them', () => {
    const count = MESSAGE_LIMITS.maxEncodings + 1;
    const [m] = new ClientMessageReader().receive(Buffer.from([2, 0, count >> 8, count & 0xff]));
    expect(m).toMatchObject({ type: 'failed', error: { code: 'RFB_ERR_CLIENT_PROTOCOL', details: { count } } });
  });

  it('accepts the maximum number of encodings', () => {
    const n = MESSAGE_LIMITS.maxEncodings;
    const msg = Buffer.concat([Buffer.from([2, 0, n >> 8, n & 0xff]), Buffer.alloc(4 * n)]);
    expect(new ClientMessageReader().receive(msg)).toEqual([{ type: 'setEncodings', encodings: new Array<number>(n).fill(0) }]);
  });

  it('fails on cut text over the limit (and on the extended-clipboard form) without waiting for it', () => {
    for (const length of [MESSAGE_LIMITS.maxCutTextBytes + 1, 0x80000010]) {
      const header = hex`06 000000 00000000`;
      header.writeUInt32BE(length, 4);
      expect(new ClientMessageReader().receive(header)).toEqual([expect.objectContaining({ type: 'failed' })]);
    }
  });

  it('skips cut text at the limit as it arrives, without buffering it', () => {
    const reader = new ClientMessageReader();
    const header = hex`06 000000 00000000`;
    header.writeUInt32BE(MESSAGE_LIMITS.maxCutTextBytes, 4);
    expect(reader.receive(header)).toEqual([{ type: 'clientCutText', length: MESSAGE_LIMITS.maxCutTextBytes }]);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    for (let sent = 0; sent < MESSAGE_LIMITS.maxCutTextBytes; sent += chunk.length) {
      expect(reader.receive(chunk)).toEqual([]);
      expect(reader.bufferedBytes).toBe(0);
    }
    // The next message is read normally.
    expect(reader.receive(hex`05 00 0001 0002`)).toEqual([{ type: 'pointerEvent', buttonMask: 0, x: 1, y: 2 }]);
  });

  it('property: random bytes in any chunking never throw and never buffer past the largest message', () => {
    const maxMessage = 4 + 4 * MESSAGE_LIMITS.maxEncodings;
    const validish = fc.constantFrom(...[0, 2, 3, 4, 5, 6].map((t) => Buffer.from([t])));
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), validish, fc.constant(SESSION)), { maxLength: 40 }),
        (chunks) => {
          const reader = new ClientMessageReader();
          let failed = false;
          for (const c of chunks) {
            for (const m of reader.receive(c)) {
              expect(failed).toBe(false);
              if (m.type === 'failed') failed = true;
            }
            expect(reader.bufferedBytes).toBeLessThan(maxMessage);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
