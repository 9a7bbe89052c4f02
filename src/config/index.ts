export { cliLogLevel, loadConfig, parseListen, redactUrl, type Config, type IronicSettings, type KeystoneSettings, type NovaSettings, type ListenAddress, type LoadOptions, type RawConfig } from './load.js';
export { CONFIG_SCHEMA, ENV_OVERRIDES } from './schema.js';
export { checkTlsPair, type CertificateSummary, type TlsListenerSettings, type TlsPairCheck } from './tls-pair.js';
