export { cliLogLevel, loadConfig, loadConfigWithProblems } from './load.js';
export { parseListen } from './resolve.js';
export { redactUrl } from './openstack-settings.js';
export type { Config, IronicSettings, KeystoneSettings, ListenAddress, LoadOptions, LoadPurpose, NovaSettings, RedisSettings } from './types.js';
export { CONFIG_SCHEMA, ENV_OVERRIDES, type RawConfig } from './schema.js';
export { parseCellDbUrl, type CellDb } from './db-url.js';
export { checkTlsPair, type CertificateSummary, type TlsListenerSettings, type TlsPairCheck } from './tls-pair.js';
export { DEFAULT_MAX_CLIPBOARD_BYTES, profilePolicy } from './profile-schema.js';
