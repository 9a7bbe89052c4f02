import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The installation's root, the folder holding package.json (with a trailing separator). This file
 * runs from `<root>/src/` (tsx, vitest) and from `<root>/dist/src/` (the build, which compiles src/
 * and tools/ side by side), so no fixed number of `../` serves both: the nearer of the two
 * candidates that holds a package.json wins (dist/ holds none).
 */
export const PACKAGE_ROOT: string = fileURLToPath(
  [new URL('../', import.meta.url), new URL('../../', import.meta.url)].find((dir) => existsSync(new URL('package.json', dir))) ??
    new URL('../', import.meta.url),
);
