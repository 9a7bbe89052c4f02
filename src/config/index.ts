export { cliLogLevel, loadConfig, parseListen, redactUrl, type Config, type IronicSettings, type KeystoneSettings, type NovaSettings, type ListenAddress, type LoadOptions, type RawConfig, type RedisSettings } from './load.js';
export { CONFIG_SCHEMA, ENV_OVERRIDES } from './schema.js';
