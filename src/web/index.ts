export { CONSOLE_PAGE_PATHS, DEFAULT_WEB_ROOT, LANDING_PATH, registerConsolePage } from './console-page.js';
export type { ConsolePageOptions } from './console-page.js';
export { buildConsoleCsp } from './csp.js';
