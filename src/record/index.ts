export * from './format.js';
export { ClientEventReader } from './client-events.js';
export { Recorder, browserHandshakeBytes, type RecorderOptions, type RelayTap } from './recorder.js';
export { Recordings, isRecordingId, readInfo, type RecordingAudit, type RecordingInfo, type RecordedInit, type RecordedTarget, type RecordingsConfig } from './recordings.js';
