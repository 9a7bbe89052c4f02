/**
 * The recording file, version 1 (README "Recordings"). One file per session, `<id>.vncrec`:
 *
 *   header   one line of JSON (UTF-8, at most MAX_HEADER_BYTES with its '\n'): RecordingHeader
 *   records  [U8 type][U32 t_ms][U32 length][length bytes], big-endian, t_ms since the header's
 *            startedAt (monotonic clock); in the order they happened
 *              1 data   bytes vncgate sent to the browser, exactly (RFB from ProtocolVersion on)
 *              2 event  a client message as JSON (ClientEvent), never its keys unless recordKeys
 *              3 end    JSON (RecordingTrailer), the last record
 *   footer   [U32 length of the end record][ASCII "VREC"]: the trailer is found from the file's end
 *
 * A file without its footer was cut short (vncgate stopped, the disk failed): readers play what
 * is there and call it truncated. Binary records rather than JSON lines with base64: framebuffer
 * bytes are most of a recording, and base64 would add a third to them and a decode per record.
 */

export const RECORDING_FORMAT = 'vncgate-recording';
export const RECORDING_VERSION = 1;
export const RECORDING_EXTENSION = '.vncrec';
export const RECORD_TYPE = { data: 1, event: 2, end: 3 } as const;
export type RecordType = (typeof RECORD_TYPE)[keyof typeof RECORD_TYPE];
export const RECORD_HEAD_BYTES = 9;
export const FOOTER_MAGIC = 'VREC';
export const FOOTER_BYTES = 8;
export const MAX_HEADER_BYTES = 4096;
/** Largest record a reader accepts (a relay chunk is at most 256 KiB). */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
/** Room kept under a size cap for the end record and footer. */
export const END_RESERVE_BYTES = 1024;

export type RecordingHeader = {
  format: typeof RECORDING_FORMAT;
  version: typeof RECORDING_VERSION;
  id: string;
  sessionId: string;
  /** ISO 8601 UTC. */
  startedAt: string;
  /** The console's label (host:port, node, instance) and profile; never a token. */
  target: string;
  profile: string;
  width: number;
  height: number;
  desktopName: string;
  recordKeys: boolean;
  /** Why it is recorded: the profile says so, or the token asked. */
  reason: 'profile' | 'token';
};

/** Why a recording stopped before its session ended. */
export type TruncatedReason = 'size' | 'overflow' | 'error' | 'stalled';

export type RecordingTrailer = {
  endedAt: string;
  durationMs: number;
  truncated: boolean;
  reason: TruncatedReason | null;
  /** Data bytes recorded (what the browser received until the recording stopped). */
  dataBytes: number;
  events: number;
  /** Key messages seen and not recorded (recordKeys off). */
  keyEventsOmitted: number;
};

/** One client message, as metadata. `k` is its kind (src/rfb client-message-framing KIND names). */
export type ClientEvent =
  | { k: 'pointerEvent'; x: number; y: number; buttons: number }
  | { k: 'keyEvent'; down: boolean; keysym: number }
  | { k: 'qemuExtendedKeyEvent'; down: boolean; keysym: number; keycode: number }
  | { k: 'clientCutText'; bytes: number }
  | { k: 'setDesktopSize'; width: number; height: number }
  | { k: string };

export function encodeHeader(h: RecordingHeader): Buffer {
  const b = Buffer.from(`${JSON.stringify(h)}\n`, 'utf8');
  if (b.length > MAX_HEADER_BYTES) throw new Error(`recording header of ${b.length} bytes`);
  return b;
}

/** One record, head and payload in one buffer (the payload is copied: relay buffers are reused). */
export function encodeRecord(type: RecordType, tMs: number, payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(RECORD_HEAD_BYTES + payload.length);
  b[0] = type;
  b.writeUInt32BE(Math.min(0xffff_ffff, Math.max(0, Math.floor(tMs))), 1);
  b.writeUInt32BE(payload.length, 5);
  b.set(payload, RECORD_HEAD_BYTES);
  return b;
}

/** The end record and the footer. */
export function encodeEnd(tMs: number, trailer: RecordingTrailer): Buffer {
  const rec = encodeRecord(RECORD_TYPE.end, tMs, Buffer.from(JSON.stringify(trailer), 'utf8'));
  const footer = Buffer.alloc(FOOTER_BYTES);
  footer.writeUInt32BE(rec.length, 0);
  footer.write(FOOTER_MAGIC, 4, 'ascii');
  return Buffer.concat([rec, footer]);
}

export type ParsedRecord = { type: RecordType; tMs: number; payload: Buffer };

export type ParsedRecording = {
  header: RecordingHeader;
  records: ParsedRecord[];
  /** Null when the file was cut short. */
  trailer: RecordingTrailer | null;
};

export class RecordingFormatError extends Error {}

export function parseHeader(buf: Buffer): { header: RecordingHeader; length: number } {
  const nl = buf.subarray(0, MAX_HEADER_BYTES).indexOf(0x0a);
  if (nl < 0) throw new RecordingFormatError('no header line');
  let h: unknown;
  try {
    h = JSON.parse(buf.subarray(0, nl).toString('utf8'));
  } catch {
    throw new RecordingFormatError('header is not JSON');
  }
  const v = h as Partial<RecordingHeader> | null;
  if (v === null || typeof v !== 'object' || v.format !== RECORDING_FORMAT) throw new RecordingFormatError('not a vncgate recording');
  if (v.version !== RECORDING_VERSION) throw new RecordingFormatError(`recording version ${String(v.version)} is not supported`);
  return { header: v as RecordingHeader, length: nl + 1 };
}

/** The trailer from a file's last bytes (end record + footer), or null if it was cut short. */
export function parseTail(tail: Buffer): RecordingTrailer | null {
  if (tail.length < FOOTER_BYTES) return null;
  const f = tail.subarray(tail.length - FOOTER_BYTES);
  if (f.toString('ascii', 4) !== FOOTER_MAGIC) return null;
  const recLength = f.readUInt32BE(0);
  const start = tail.length - FOOTER_BYTES - recLength;
  if (recLength < RECORD_HEAD_BYTES || start < 0 || tail[start] !== RECORD_TYPE.end) return null;
  try {
    return JSON.parse(tail.subarray(start + RECORD_HEAD_BYTES, tail.length - FOOTER_BYTES).toString('utf8')) as RecordingTrailer;
  } catch {
    return null;
  }
}

/** A whole file. Peer-independent (we wrote it), but bounded all the same: a torn record ends the list. */
export function parseRecording(buf: Buffer): ParsedRecording {
  const { header, length } = parseHeader(buf);
  const records: ParsedRecord[] = [];
  let pos = length;
  let trailer: RecordingTrailer | null = null;
  while (pos + RECORD_HEAD_BYTES <= buf.length) {
    const type = buf[pos]!;
    const n = buf.readUInt32BE(pos + 5);
    if (n > MAX_RECORD_BYTES || pos + RECORD_HEAD_BYTES + n > buf.length) break;
    if (type !== RECORD_TYPE.data && type !== RECORD_TYPE.event && type !== RECORD_TYPE.end) throw new RecordingFormatError(`unknown record type ${type}`);
    const payload = buf.subarray(pos + RECORD_HEAD_BYTES, pos + RECORD_HEAD_BYTES + n);
    records.push({ type, tMs: buf.readUInt32BE(pos + 1), payload });
    pos += RECORD_HEAD_BYTES + n;
    if (type === RECORD_TYPE.end) {
      trailer = parseTail(buf.subarray(pos - RECORD_HEAD_BYTES - n, pos + FOOTER_BYTES));
      break;
    }
  }
  return { header, records, trailer };
}
