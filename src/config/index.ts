export { loadConfig, parseListen, type Config, type IronicSettings, type ListenAddress, type LoadOptions, type RawConfig } from './load.js';
export { CONFIG_SCHEMA, ENV_OVERRIDES } from './schema.js';
