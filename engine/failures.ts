/**
 * The failure types stage kinds throw. The interpreter, `twinflow status`, `twinflow exec`
 * and the review server tell failures apart by these types, never by message text; a
 * kind with a failure of its own adds it here. Pure data: workflows read it
 * too; activities/failures.ts builds the failures.
 */
export const FAILURE = {
  /** The stage's inputs cannot work (a bad value, a missing file, a malformed artifact): fix them; never retried. */
  invalidInput: 'InvalidStageInput',
  /** A worker's own setting is wrong (an environment variable, a too-small budget): fix the worker; never retried. */
  invalidWorkerSetting: 'InvalidWorkerSetting',
  /** The outputs do not match the kind's declared schema: a bug in the kind; never retried. */
  invalidOutput: 'InvalidStageOutput',
  /** The outputs are too large to travel through Temporal's history; never retried. */
  outputsTooLarge: 'OutputsTooLarge',
  /** An external tool or command exited non-zero or reported an error; retried. */
  toolFailed: 'StageFailed',
  /** A tool exited 0 but what it wrote is missing or does not match what was asked; never retried. */
  toolOutputInvalid: 'ToolOutputInvalid',
  /** The stage was cancelled (with the run, or by a person). */
  cancelled: 'Cancelled',
  /** Another attempt of the stage still holds its folder (a worker that has not let go yet); retried. */
  stageFolderBusy: 'StageFolderBusy',
  /** An artifact the stage reads is in no store; never retried. */
  artifactMissing: 'ArtifactMissing',
  /** An artifact's bytes do not match its digest; never retried. */
  artifactCorrupt: 'ArtifactCorrupt',
  /** The model file the stage names is not there; never retried. */
  modelMissing: 'ModelMissing',
  /** A model's preprocessing spec is missing or malformed; never retried. */
  invalidPreprocessSpec: 'InvalidPreprocessSpec',
  /** The stage asks for more GPUs than its worker has (resources.gpus); never retried on that queue. */
  notEnoughGpus: 'NotEnoughGpus',
  /** The worker was shut down under the attempt: never the stage's fault; the interpreter schedules it again. */
  workerStopped: 'WorkerStopped',
  /** The shared object store (TWINFLOW_STORE) has no such bucket; never retried. */
  objectStoreBucketMissing: 'ObjectStoreBucketMissing',
  /** The object store refused the credentials; never retried. */
  objectStoreCredentialsRefused: 'ObjectStoreCredentialsRefused',
  /** The object store did not answer; retried. */
  objectStoreUnreachable: 'ObjectStoreUnreachable',
  /** A model file cannot be loaded; never retried. */
  invalidModel: 'InvalidModel',
  /** Part of the work could not be done (some queries unanswered); never retried. */
  incomplete: 'StageIncomplete',
} as const;

export type FailureType = (typeof FAILURE)[keyof typeof FAILURE];

/** Types the interpreter does not retry even when a failure arrives without its flag (an older worker's). */
export const NON_RETRYABLE: string[] = [FAILURE.invalidInput, FAILURE.invalidWorkerSetting, FAILURE.invalidOutput, FAILURE.outputsTooLarge, FAILURE.toolOutputInvalid, FAILURE.invalidModel];

