import { ApplicationFailure } from '@temporalio/common';
import { FAILURE, type FailureType } from '../../engine/failures.js';

/** What a failed S3 request was doing, for the message a person reads. */
export interface S3Context {
  /** `s3://BUCKET/PREFIX` */
  location: string;
  bucket: string;
  /** The custom endpoint; undefined for AWS S3. */
  endpoint?: string;
  credentialsFrom: string;
  /** e.g. `uploading sha256/ab/abcd...` */
  doing: string;
}

/** Socket-level failures: nothing answered, or the connection broke mid-request. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET']);
const CREDENTIAL_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'AccessDenied', 'CredentialsProviderError']);

interface SdkError {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The HTTP status of an SDK error, when the server answered at all. */
export function statusOf(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** The S3 error code (`NoSuchKey`, `PreconditionFailed`, ...) or the SDK's error name. */
export function codeOf(err: unknown): string | undefined {
  const e = err as SdkError | undefined;
  return e?.Code ?? e?.name;
}

/**
 * Turns the SDK's error into one that says what to do, for the three causes a person fixes:
 * a missing bucket, refused credentials and an endpoint that does not answer. The first two
 * are non-retryable (retrying changes nothing); an unreachable endpoint is retryable, since
 * the server may be restarting. Anything else is returned as it is.
 */
export function explainS3Error(err: unknown, ctx: S3Context): unknown {
  if (err instanceof ApplicationFailure) return err;
  const code = codeOf(err);
  const status = statusOf(err);
  const where = ctx.endpoint ? `at ${ctx.endpoint}` : 'in AWS S3';
  if (code === 'NoSuchBucket') {
    return failure(FAILURE.objectStoreBucketMissing, true, err,
      `the bucket ${ctx.bucket} does not exist ${where} (TWINFLOW_STORE=${ctx.location}, while ${ctx.doing}). ` +
      `Create it (aws s3 mb s3://${ctx.bucket}${ctx.endpoint ? ` --endpoint-url ${ctx.endpoint}` : ''}), or check TWINFLOW_STORE.`);
  }
  if (CREDENTIAL_CODES.has(code ?? '') || status === 401 || status === 403) {
    const what = code === 'AccessDenied' ? 'denied access to' : 'refused the credentials for';
    return failure(FAILURE.objectStoreCredentialsRefused, true, err,
      `the object store ${where} ${what} ${ctx.location} (${code && code !== 'Unknown' ? code : `HTTP ${status}`}, while ${ctx.doing}). ` +
      `The credentials came from ${ctx.credentialsFrom}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, ` +
      `and that they may read and write the bucket ${ctx.bucket}.`);
  }
  if (/region is missing/i.test((err as SdkError | undefined)?.message ?? '')) {
    return failure(FAILURE.objectStoreCredentialsRefused, true, err,
      `no AWS region is set for ${ctx.location}: set AWS_REGION (or a region in the profile AWS_PROFILE uses).`);
  }
  if (isNetworkError(err)) {
    return failure(FAILURE.objectStoreUnreachable, false, err,
      `cannot reach the object store ${ctx.endpoint ? `at ${ctx.endpoint}` : 'AWS S3'} (${networkCode(err)}, while ${ctx.doing} in ${ctx.location}). ` +
      (ctx.endpoint ? 'Check that it is running and that AWS_ENDPOINT_URL names it.' : 'Check the network, or set AWS_ENDPOINT_URL for S3-compatible storage.'));
  }
  return err;
}

function isNetworkError(err: unknown): boolean {
  const e = err as SdkError & { cause?: unknown };
  if (statusOf(err) !== undefined && statusOf(err)! > 0) return false;
  return NETWORK_CODES.has(e?.code ?? '') || e?.name === 'TimeoutError' || /socket hang up|ECONNRESET|ECONNREFUSED/.test(e?.message ?? '') ||
    (e?.cause !== undefined && e.cause !== err && isNetworkError(e.cause));
}

function networkCode(err: unknown): string {
  const e = err as SdkError & { cause?: SdkError };
  return e.code ?? e.cause?.code ?? e.name ?? 'no answer';
}

function failure(type: FailureType, nonRetryable: boolean, cause: unknown, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, nonRetryable, message, cause: cause instanceof Error ? cause : undefined });
}
