export { ByteQueue, ByteView, ByteWriter } from './byte-queue.js';
export {
  CLIENT_MESSAGE_KINDS,
  ClientMessageFilter,
  type ClientMessageFilterStats,
  type ClientMessageKind,
} from './client-message-filter.js';
export {
  CLIPBOARD_POLICIES,
  MAX_CLIPBOARD_LIMIT,
  narrowPolicy,
  parsePolicyNarrowing,
  resolveClientMessagePolicy,
  type ClientMessagePolicy,
  type ClientMessageRules,
  type ClipboardPolicy,
  type NarrowingParse,
  type PolicyNarrowing,
} from './client-message-policy.js';
export {
  CLIENT_MESSAGE,
  CLIENT_MESSAGE_LIMITS,
  EXTENDED_CLIPBOARD_ACTION,
  LIMITS,
  PSEUDO_ENCODING,
  QEMU_AUDIO_OPERATION,
  QEMU_CLIENT_SUBTYPE,
  RFB_VERSIONS,
  SECURITY_CHOICES,
  SECURITY_RESULT,
  SECURITY_TYPE,
  SECURITY_TYPE_NAMES,
  VENCRYPT_SUBTYPE,
  VENCRYPT_SUBTYPE_NAMES,
  isSecurityChoice,
  type InnerAuth,
  type RfbVersion,
  type SecurityChoice,
  type Transport,
} from './constants.js';
export {
  RfbClientHandshake,
  sanitizeReason,
  type ClientAction,
  type ClientHandshakeInfo,
  type ClientHandshakeOptions,
} from './client-handshake.js';
export {
  RfbServerHandshake,
  type ServerAction,
  type ServerHandshakeInfo,
  type ServerHandshakeOptions,
  type ServerSecurity,
} from './server-handshake.js';
export {
  ServerInitReader,
  clientInit,
  encodePixelFormat,
  encodeServerInit,
  readPixelFormat,
  type PixelFormat,
  type ServerInit,
  type ServerInitResult,
} from './server-init.js';
export { parseVersion, negotiatedVersion, versionBytes } from './version.js';
export { vncAuthResponse, verifyVncAuthResponse } from './vnc-auth.js';
