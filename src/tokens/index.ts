export { createTokenStore, type TokenStoreConfig } from './create-token-store.js';
export { MemoryTokenStore, type MemoryTokenStoreOptions } from './memory-store.js';
export { RedisTokenStore, type RedisTokenStoreOptions } from './redis-store.js';
export type { RedisConnectionOptions, RedisEndpoint } from './redis-connection.js';
export { decodeRecord, encodeRecord, TOKEN_RECORD_VERSION, tokenIssuer, type RecordExtras, type TokenIssuer, type TokenRecord } from './record.js';
export { parseStaticTargetText, parseTarget, TARGET_KINDS, type ConsoleTarget, type NodeTarget, type StaticTarget, type TargetParseResult } from './target.js';
export { generateToken, hashToken, isWellFormedToken, TOKEN_BYTES, TOKEN_LENGTH, tokenLogId } from './token.js';
export {
  TOKEN_STORE_DEFAULTS,
  type ConsumeOptions,
  type IssuedToken,
  type SlotRequest,
  type TokenStore,
  type TokenStoreKind,
  type TokenStoreLogger,
} from './token-store.js';
