export { ByteQueue, ByteWriter } from './byte-queue.js';
export {
  LIMITS,
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
