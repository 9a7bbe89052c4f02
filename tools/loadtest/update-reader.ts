import { fillStreamPayload } from '../synthetic/index.js';
import { LoadError } from './load-error.js';

/** Server-to-client message types (RFC 6143 §7.6). */
const SERVER_MESSAGE = { framebufferUpdate: 0, setColourMapEntries: 1, bell: 2, serverCutText: 3 } as const;
/** Raw encoding (§7.7.1): the only one the load tester asks for. */
const ENCODING_RAW = 0;
/** ServerCutText longer than this is a broken stream, not a clipboard (noVNC has no limit; we need one). */
const MAX_CUT_TEXT_BYTES = 1024 * 1024;

type State = 'type' | 'fields' | 'rect' | 'pixels' | 'skip' | 'failed';

/**
 * Reads the server's side of a running RFB session (after ServerInit) as it arrives, in any
 * chunking, and checks every pixel byte: the synthetic server's stream/pingpong rectangles carry
 * payload `seq` (see synthetic/stream-payload.ts), seq counting rectangles from 0. A dropped,
 * inserted or altered byte anywhere shows up as a payload mismatch, a message that cannot be,
 * or (a dropped byte at the very end) an update that never completes — which the session's
 * update deadline turns into `timeout-update`.
 *
 * Sans-I/O and allocation-free per chunk: `receive` returns how many FramebufferUpdates the chunk
 * completed, or -1 once the stream is broken (`failure` says how).
 */
export class UpdateReader {
  readonly #width: number;
  readonly #height: number;
  readonly #bpp: number;
  readonly #verify: boolean;
  readonly #fields = Buffer.alloc(12);
  #have = 0;
  #need = 1;
  #state: State = 'type';
  #msg = 0;
  #rectsLeft = 0;
  #pixelsLeft = 0;
  #pixelsAt = 0;
  #skipLeft = 0;
  #expected: Buffer = Buffer.alloc(0);
  #seq = 0;
  #failure: LoadError | null = null;
  /** Pixel bytes received (and checked, unless verification is off). */
  pixelBytes = 0;
  updates = 0;

  constructor(opts: { width: number; height: number; bitsPerPixel: number; verify?: boolean }) {
    this.#width = opts.width;
    this.#height = opts.height;
    this.#bpp = opts.bitsPerPixel / 8;
    this.#verify = opts.verify ?? true;
  }

  get failure(): LoadError | null {
    return this.#failure;
  }

  /** True between the first byte of an update and its last. */
  get midUpdate(): boolean {
    return this.#state !== 'type' || this.#have !== 0;
  }

  receive(chunk: Buffer): number {
    let done = 0;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.#state) {
        case 'pixels': {
          const k = Math.min(this.#pixelsLeft, n - i);
          if (this.#verify) {
            const at = this.#pixelsAt;
            if (!chunk.subarray(i, i + k).equals(this.#expected.subarray(at, at + k))) {
              this.#mismatch(chunk.subarray(i, i + k), at);
              return -1;
            }
          }
          i += k;
          this.#pixelsAt += k;
          this.#pixelsLeft -= k;
          this.pixelBytes += k;
          if (this.#pixelsLeft === 0) {
            this.#seq = (this.#seq + 1) >>> 0;
            if (this.#rectEnded()) done++;
          }
          break;
        }
        case 'skip': {
          const k = Math.min(this.#skipLeft, n - i);
          i += k;
          this.#skipLeft -= k;
          if (this.#skipLeft === 0) this.#expect('type', 1);
          break;
        }
        case 'failed':
          return -1;
        default: {
          const k = Math.min(this.#need - this.#have, n - i);
          chunk.copy(this.#fields, this.#have, i, i + k);
          this.#have += k;
          i += k;
          if (this.#have === this.#need && this.#fieldsComplete()) done++;
          if (this.#failure) return -1;
        }
      }
    }
    this.updates += done;
    return done;
  }

  #expect(state: State, bytes: number): void {
    this.#state = state;
    this.#have = 0;
    this.#need = bytes;
  }

  #fail(reason: string, detail: string): false {
    this.#state = 'failed';
    this.#failure = new LoadError(reason, detail);
    return false;
  }

  /** A header field set is complete; returns true when that completed an update. */
  #fieldsComplete(): boolean {
    const f = this.#fields;
    switch (this.#state) {
      case 'type':
        this.#msg = f[0]!;
        switch (this.#msg) {
          case SERVER_MESSAGE.framebufferUpdate:
            this.#expect('fields', 3); // padding, number-of-rectangles (§7.6.1)
            return false;
          case SERVER_MESSAGE.bell:
            this.#expect('type', 1);
            return false;
          case SERVER_MESSAGE.serverCutText:
            this.#expect('fields', 7); // 3 padding, U32 length (§7.6.4)
            return false;
          case SERVER_MESSAGE.setColourMapEntries:
            this.#expect('fields', 5); // padding, first-colour, number-of-colours (§7.6.2)
            return false;
          default:
            return this.#fail('rfb-protocol', `unknown server message type ${this.#msg} after update ${this.updates} (a byte lost or altered?)`);
        }
      case 'fields':
        if (this.#msg === SERVER_MESSAGE.framebufferUpdate) {
          this.#rectsLeft = f.readUInt16BE(1);
          if (this.#rectsLeft === 0) {
            this.#expect('type', 1);
            return true;
          }
          this.#expect('rect', 12);
          return false;
        }
        if (this.#msg === SERVER_MESSAGE.serverCutText) {
          const len = f.readUInt32BE(3);
          if (len > MAX_CUT_TEXT_BYTES) return this.#fail('rfb-protocol', `ServerCutText of ${len} bytes`);
          return this.#skip(len);
        }
        return this.#skip(f.readUInt16BE(3) * 6);
      case 'rect': {
        const x = f.readUInt16BE(0);
        const y = f.readUInt16BE(2);
        const w = f.readUInt16BE(4);
        const h = f.readUInt16BE(6);
        const enc = f.readInt32BE(8);
        if (enc !== ENCODING_RAW) return this.#fail('rfb-protocol', `rectangle with encoding ${enc}, only Raw was asked for (update ${this.updates})`);
        if (x + w > this.#width || y + h > this.#height) {
          return this.#fail('rfb-protocol', `rectangle ${w}×${h}+${x}+${y} outside the ${this.#width}×${this.#height} framebuffer (update ${this.updates})`);
        }
        const bytes = w * h * this.#bpp;
        if (bytes === 0) return this.#rectEnded();
        this.#state = 'pixels';
        this.#pixelsLeft = bytes;
        this.#pixelsAt = 0;
        if (this.#verify) {
          if (this.#expected.length < bytes) this.#expected = Buffer.allocUnsafe(bytes);
          fillStreamPayload(this.#seq, this.#expected.subarray(0, bytes));
        }
        return false;
      }
      default:
        return false;
    }
  }

  #skip(bytes: number): false {
    if (bytes === 0) this.#expect('type', 1);
    else {
      this.#state = 'skip';
      this.#skipLeft = bytes;
    }
    return false;
  }

  /** One rectangle is done; true if it was the update's last. */
  #rectEnded(): boolean {
    this.#rectsLeft--;
    if (this.#rectsLeft > 0) {
      this.#expect('rect', 12);
      return false;
    }
    this.#expect('type', 1);
    return true;
  }

  #mismatch(got: Buffer, at: number): void {
    let k = 0;
    while (k < got.length && got[k] === this.#expected[at + k]) k++;
    this.#fail(
      'payload-mismatch',
      `rectangle seq ${this.#seq}: pixel byte ${at + k} is 0x${got[k]!.toString(16).padStart(2, '0')}, expected 0x${this.#expected[at + k]!.toString(16).padStart(2, '0')} (after ${this.pixelBytes + k} good pixel bytes)`,
    );
  }
}
