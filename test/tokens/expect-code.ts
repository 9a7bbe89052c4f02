import { isVncgateError } from '../../src/errors.js';

/** The `code` a promise rejects with: `RESOLVED` if it fulfils, `NOT_VNCGATE_ERROR: …` for anything else. */
export async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return isVncgateError(error) ? error.code : `NOT_VNCGATE_ERROR: ${String(error)}`;
  }
  return 'RESOLVED';
}
