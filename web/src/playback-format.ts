/**
 * Reads a vncgate recording (format version 1, README "Recordings"; written by src/record/) in the
 * browser: a JSON header line, then [U8 type][U32 t_ms][U32 length][bytes] records, big-endian,
 * then an end record and an 8-byte footer. Pure: no DOM, so tests run it under Node too.
 */

export const RECORD_DATA = 1;
export const RECORD_EVENT = 2;
export const RECORD_END = 3;
const HEAD = 9;
const MAX_HEADER_BYTES = 4096;
const MAX_RECORD_BYTES = 16 * 1024 * 1024;

export type PlaybackHeader = {
  format: string;
  version: number;
  id: string;
  startedAt: string;
  target: string;
  width: number;
  height: number;
  desktopName: string;
};

export type PlaybackRecord = { type: number; tMs: number; bytes: Uint8Array };

export type PlaybackTrailer = { truncated: boolean; reason: string | null; durationMs: number };

export type Playback = {
  header: PlaybackHeader;
  records: PlaybackRecord[];
  /** Null: the file has no end record (cut short, or still being written). */
  trailer: PlaybackTrailer | null;
};

export class PlaybackFormatError extends Error {}

export function readPlayback(buf: ArrayBuffer): Playback {
  const u8 = new Uint8Array(buf);
  const dv = new DataView(buf);
  const nl = u8.subarray(0, MAX_HEADER_BYTES).indexOf(0x0a);
  if (nl < 0) throw new PlaybackFormatError('not a vncgate recording (no header)');
  let header: PlaybackHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(u8.subarray(0, nl))) as PlaybackHeader;
  } catch {
    throw new PlaybackFormatError('not a vncgate recording (bad header)');
  }
  if (header.format !== 'vncgate-recording') throw new PlaybackFormatError('not a vncgate recording');
  if (header.version !== 1) throw new PlaybackFormatError(`recording version ${String(header.version)} is not supported`);
  const records: PlaybackRecord[] = [];
  let trailer: PlaybackTrailer | null = null;
  let pos = nl + 1;
  while (pos + HEAD <= u8.length) {
    const type = u8[pos]!;
    const tMs = dv.getUint32(pos + 1);
    const n = dv.getUint32(pos + 5);
    if (n > MAX_RECORD_BYTES || pos + HEAD + n > u8.length) break;
    const bytes = u8.subarray(pos + HEAD, pos + HEAD + n);
    pos += HEAD + n;
    if (type === RECORD_END) {
      try {
        trailer = JSON.parse(new TextDecoder().decode(bytes)) as PlaybackTrailer;
      } catch {
        trailer = null;
      }
      break;
    }
    if (type === RECORD_DATA || type === RECORD_EVENT) records.push({ type, tMs, bytes });
  }
  return { header, records, trailer };
}
