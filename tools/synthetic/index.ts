export { startSyntheticServer, type SyntheticServer, type SyntheticStats } from './server.js';
export {
  SYNTHETIC_DEFAULTS,
  SYNTHETIC_MODES,
  type SyntheticLogger,
  type SyntheticMode,
  type SyntheticServerOptions,
} from './options.js';
export {
  STREAM_PAYLOAD,
  fillStreamPayload,
  streamPayload,
  streamPayloadSeq,
  streamRect,
  verifyStreamPayload,
  type StreamPayloadCheck,
} from './stream-payload.js';
export { SERVER_PIXEL_FORMAT } from './pixel-format.js';
export { MESSAGE_LIMITS } from './constants.js';
export { DEMO_TITLE, DemoScreen, type DemoLayout } from './demo-screen.js';
