import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { checkKey } from './objects.js';

/** Where a `s3://BUCKET/PREFIX` URL points. */
export interface S3Location {
  bucket: string;
  /** Keys are `PREFIX/key`; no leading or trailing `/`. @default '' (keys at the bucket's root) */
  prefix: string;
}

/** Parses `s3://BUCKET` or `s3://BUCKET/PREFIX`; throws a message that says what to write instead. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/?#]*)(?:\/([^?#]*))?$/.exec(url);
  if (!m) throw new Error(`TWINFLOW_STORE=${url} is not an S3 URL: write it as s3://BUCKET or s3://BUCKET/PREFIX`);
  const bucket = m[1]!;
  // The rules S3 itself enforces; a bad name would otherwise surface as a 400 on the first upload.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(`TWINFLOW_STORE=${url}: "${bucket}" is not a bucket name (3-63 lowercase letters, digits, '.' and '-')`);
  }
  const prefix = (m[2] ?? '').replace(/\/+$/, '');
  if (prefix) {
    try {
      checkKey(prefix);
    } catch {
      throw new Error(`TWINFLOW_STORE=${url}: the prefix "${prefix}" has an empty, "." or ".." segment; write it as s3://${bucket}/a/b`);
    }
  }
  return { bucket, prefix };
}

/** What the S3 client is told, and where its settings came from (for error messages). */
export interface S3Settings {
  config: S3ClientConfig;
  /** The custom endpoint, when one is set. @default undefined (AWS S3) */
  endpoint?: string;
  /** Which credentials the client uses, in words: env variables, a profile or the default chain. */
  credentialsFrom: string;
}

/**
 * The S3 client's settings from the environment, the way the AWS CLI reads them. Only the
 * endpoint, region and static keys are read here, because `env` may not be process.env (tests,
 * a second store); profiles, SSO, web identity and instance roles are left to the SDK's
 * default credential chain.
 */
export function s3Settings(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const endpoint = endpointOf(env);
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? 'us-east-1' : undefined);
  const config: S3ClientConfig = {
    ...(region ? { region } : {}),
    ...(env.AWS_PROFILE ? { profile: env.AWS_PROFILE } : {}),
    // A bucket in another region answers with a redirect; follow it rather than fail.
    followRegionRedirects: true,
  };
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    config.credentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  if (endpoint) {
    config.endpoint = endpoint;
    // MinIO, Ceph, s3proxy and GCS serve buckets as paths; virtual hosts need DNS for each bucket.
    config.forcePathStyle = true;
    // The SDK's default CRC32 trailers are refused by several S3-compatible servers; artifacts
    // are checked by their sha256 on every download anyway.
    if (!env.AWS_REQUEST_CHECKSUM_CALCULATION) config.requestChecksumCalculation = 'WHEN_REQUIRED';
    if (!env.AWS_RESPONSE_CHECKSUM_VALIDATION) config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return { config, endpoint, credentialsFrom: credentialsFrom(env) };
}

function endpointOf(env: NodeJS.ProcessEnv): string | undefined {
  const name = env.AWS_ENDPOINT_URL_S3 ? 'AWS_ENDPOINT_URL_S3' : 'AWS_ENDPOINT_URL';
  const value = env[name];
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${name}=${value} is not a URL: write it as http://HOST:PORT or https://HOST`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${name}=${value} must start with http:// or https://`);
  }
  return value.replace(/\/+$/, '');
}

function credentialsFrom(env: NodeJS.ProcessEnv): string {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return `AWS_ACCESS_KEY_ID=${env.AWS_ACCESS_KEY_ID} and AWS_SECRET_ACCESS_KEY`;
  if (env.AWS_PROFILE) return `the profile AWS_PROFILE=${env.AWS_PROFILE} (~/.aws/config and ~/.aws/credentials)`;
  return 'the default credential chain (neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor AWS_PROFILE is set)';
}
