// Worker threads do not inherit vitest's or tsx's TypeScript loader: register tsx here, then load
// the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
