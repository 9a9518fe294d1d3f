import { ApplicationFailure } from '@temporalio/common';
import type { StageFailureDetails } from './stage-io.js';
import { FAILURE, NON_RETRYABLE, type FailureType } from '../engine/failures.js';

export { FAILURE, NON_RETRYABLE, type FailureType } from '../engine/failures.js';

function failure(type: FailureType, message: string, details?: StageFailureDetails): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: NON_RETRYABLE.includes(type), ...(details ? { details: [details] } : {}) });
}

/** "where: what is wrong and what to do", for inputs that cannot work. */
export const invalidInput = (message: string, details?: StageFailureDetails) => failure(FAILURE.invalidInput, message, details);
export const invalidWorkerSetting = (message: string) => failure(FAILURE.invalidWorkerSetting, message);
export const invalidOutput = (message: string) => failure(FAILURE.invalidOutput, message);
export const outputsTooLarge = (message: string, details?: StageFailureDetails) => failure(FAILURE.outputsTooLarge, message, details);
/** A retryable tool failure; `details` carry the exit code and the log tail to `twinflow status`. */
export const toolFailed = (message: string, details?: StageFailureDetails) => failure(FAILURE.toolFailed, message, details);
export const toolOutputInvalid = (message: string, details?: StageFailureDetails) => failure(FAILURE.toolOutputInvalid, message, details);
export const cancelled = (message: string) => failure(FAILURE.cancelled, message);
export const invalidModel = (message: string) => failure(FAILURE.invalidModel, message);
export const incomplete = (message: string) => failure(FAILURE.incomplete, message);
