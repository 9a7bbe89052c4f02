export { CONSOLE_PAGE_PATHS, DEFAULT_WEB_ROOT, registerConsolePage } from './console-page.js';
export type { ConsolePageOptions } from './console-page.js';
export { buildConsoleCsp } from './csp.js';
