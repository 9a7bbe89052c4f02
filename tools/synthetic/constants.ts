/** RFB wire constants used by the synthetic server. Sections refer to RFC 6143. */
import { CLIENT_MESSAGE_LIMITS } from '../../src/rfb/index.js';

/** Client-to-server message types: vncgate's own table (src/rfb); the synthetic server serves the six of §7.5. */
export { CLIENT_MESSAGE } from '../../src/rfb/index.js';

/** Fixed lengths of the client messages, type byte included. */
export const CLIENT_MESSAGE_LENGTH = {
  setPixelFormat: 20, // §7.5.1: type, 3 padding, PIXEL_FORMAT (16)
  setEncodingsHeader: 4, // §7.5.2: type, padding, U16 count; then S32 per encoding
  framebufferUpdateRequest: 10, // §7.5.3
  keyEvent: 8, // §7.5.4
  pointerEvent: 6, // §7.5.5
  clientCutTextHeader: 8, // §7.5.6: type, 3 padding, U32 length; then the text
} as const;

/** Server-to-client message types. */
export const SERVER_MESSAGE = {
  framebufferUpdate: 0, // §7.6.1
} as const;

/** Encodings and pseudo-encodings (S32 on the wire). */
export const ENCODING = {
  raw: 0, // §7.7.1
} as const;

/** Bounds on what a client may make us buffer or wait for. */
export const MESSAGE_LIMITS = {
  /** SetEncodings count: the same bound as vncgate's own (src/rfb CLIENT_MESSAGE_LIMITS). */
  maxEncodings: CLIENT_MESSAGE_LIMITS.maxEncodings,
  /** ClientCutText length; longer closes the client. The text itself is skipped, never buffered. */
  maxCutTextBytes: 1024 * 1024,
} as const;

/** Largest framebuffer side we accept in options (RFB sizes are U16; memory is 4 bytes a pixel). */
export const MAX_FRAMEBUFFER_SIDE = 8192;
