/**
 * The recorder's reader of browser messages (src/record/client-events.ts): the same events in any
 * chunking, keys only when asked, clipboard text never, and random input never throws or holds
 * more than a message head.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientEventReader, type ClientEvent } from '../../src/record/index.js';
import { MAX_HEAD_BYTES } from '../../src/rfb/client-message-framing.js';

const u16 = (n: number): number[] => [n >> 8, n & 255];
const u32 = (n: number): number[] => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

/** noVNC's usual traffic: SetPixelFormat, SetEncodings (with ExtendedMouseButtons), requests, pointer, keys, clipboard, QEMU key. */
const STREAM = Buffer.from([
  0, 0, 0, 0, ...new Array(16).fill(0),
  2, 0, ...u16(3), ...u32(7), ...u32(0xffff_fec4 /* -316 ExtendedMouseButtons */), ...u32(0xffff_ff21),
  3, 0, 0, 0, 0, 0, 3, 32, 2, 88,
  5, 0x81, ...u16(100), ...u16(200), 1, // extended PointerEvent: 7 bytes
  5, 0, ...u16(5), ...u16(6), // bit 7 clear: 6 bytes
  4, 1, 0, 0, ...u32(0x70),
  4, 0, 0, 0, ...u32(0x70),
  6, 0, 0, 0, ...u32(5), ...Buffer.from('s3cr3'),
  255, 0, ...u16(1), ...u32(0x71), ...u32(16),
  5, 0, ...u16(7), ...u16(8),
]);

function read(chunks: Buffer[], recordKeys: boolean): { events: ClientEvent[]; omitted: number; reader: ClientEventReader } {
  const reader = new ClientEventReader(recordKeys);
  const events: ClientEvent[] = [];
  for (const c of chunks) reader.receive(c, (e) => events.push(e));
  return { events, omitted: reader.keyEventsOmitted, reader };
}

describe('ClientEventReader', () => {
  it('reads the events, keys counted but not kept, clipboard by length only', () => {
    const { events, omitted } = read([STREAM], false);
    expect(events).toEqual([
      { k: 'setPixelFormat' },
      { k: 'setEncodings' },
      { k: 'pointerEvent', buttons: 0x81, x: 100, y: 200 },
      { k: 'pointerEvent', buttons: 0, x: 5, y: 6 },
      { k: 'clientCutText', bytes: 5 },
      { k: 'pointerEvent', buttons: 0, x: 7, y: 8 },
    ]);
    expect(omitted).toBe(3);
    expect(JSON.stringify(events)).not.toContain('s3cr3');
  });

  it('keeps keys with recordKeys', () => {
    const { events, omitted } = read([STREAM], true);
    expect(events.filter((e) => e.k.toLowerCase().includes('key'))).toEqual([
      { k: 'keyEvent', down: true, keysym: 0x70 },
      { k: 'keyEvent', down: false, keysym: 0x70 },
      { k: 'qemuExtendedKeyEvent', down: true, keysym: 0x71, keycode: 16 },
    ]);
    expect(omitted).toBe(0);
  });

  it('the same events whatever the chunking (every single cut, and byte at a time)', () => {
    const whole = read([STREAM], true).events;
    for (let cut = 0; cut <= STREAM.length; cut++) expect(read([STREAM.subarray(0, cut), STREAM.subarray(cut)], true).events).toEqual(whole);
    expect(read([...STREAM].map((b) => Buffer.from([b])), true).events).toEqual(whole);
  });

  it('random bytes in random chunks never throw, and never hold more than a message head', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 20 }), (chunks) => {
        const reader = new ClientEventReader(true);
        for (const c of chunks) {
          reader.receive(Buffer.from(c), () => undefined);
          expect(reader.heldBytes).toBeLessThanOrEqual(MAX_HEAD_BYTES);
        }
      }),
      { numRuns: 300 },
    );
  });
});
