import { describe, expect, it } from 'vitest';
import { FolderObjects } from '../../activities/store/objects.js';
import { parseS3Url, s3Settings } from '../../activities/store/s3-config.js';
import { openObjectStore, S3Objects } from '../../activities/store/s3-objects.js';

const keys = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' };

describe('parseS3Url', () => {
  it('reads the bucket and a prefix without its slashes', () => {
    expect(parseS3Url('s3://my-bucket')).toEqual({ bucket: 'my-bucket', prefix: '' });
    expect(parseS3Url('s3://my-bucket/')).toEqual({ bucket: 'my-bucket', prefix: '' });
    expect(parseS3Url('s3://my.bucket/team/twinflow/')).toEqual({ bucket: 'my.bucket', prefix: 'team/twinflow' });
  });

  it('refuses what S3 would refuse, saying how to write it', () => {
    expect(() => parseS3Url('s3://')).toThrow('"" is not a bucket name');
    expect(() => parseS3Url('s3://My_Bucket/x')).toThrow('"My_Bucket" is not a bucket name (3-63 lowercase letters');
    expect(() => parseS3Url('s3://ab')).toThrow('is not a bucket name');
    expect(() => parseS3Url('s3://bucket/a//b')).toThrow('the prefix "a//b" has an empty, "." or ".." segment');
    expect(() => parseS3Url('s3://bucket/a/../b')).toThrow('segment');
    expect(() => parseS3Url('s3://bucket/x?versionId=1')).toThrow('write it as s3://BUCKET or s3://BUCKET/PREFIX');
  });
});

describe('s3Settings', () => {
  it('uses a custom endpoint with path-style addressing, us-east-1 and no CRC32 trailers', () => {
    const { config, endpoint } = s3Settings({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9000/', ...keys });
    expect(endpoint).toBe('http://127.0.0.1:9000');
    expect(config).toMatchObject({
      endpoint: 'http://127.0.0.1:9000', forcePathStyle: true, region: 'us-east-1',
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    });
  });

  it('prefers AWS_ENDPOINT_URL_S3 to AWS_ENDPOINT_URL, and AWS_REGION to the default', () => {
    const { config } = s3Settings({ AWS_ENDPOINT_URL: 'http://general:1', AWS_ENDPOINT_URL_S3: 'https://s3-only:2', AWS_REGION: 'auto' });
    expect(config).toMatchObject({ endpoint: 'https://s3-only:2', region: 'auto' });
    expect(s3Settings({ AWS_ENDPOINT_URL: 'http://h:1', AWS_DEFAULT_REGION: 'eu-west-3' }).config.region).toBe('eu-west-3');
  });

  it('leaves AWS S3 to the SDK: no endpoint, virtual hosts, region and credentials from its chains', () => {
    const { config, endpoint, credentialsFrom } = s3Settings({});
    expect(endpoint).toBeUndefined();
    expect(config).toEqual({ followRegionRedirects: true });
    expect(credentialsFrom).toContain('the default credential chain (neither AWS_ACCESS_KEY_ID');
  });

  it('passes AWS_PROFILE to the SDK and says so in messages', () => {
    const { config, credentialsFrom } = s3Settings({ AWS_PROFILE: 'ci', AWS_REGION: 'us-west-2' });
    expect(config).toEqual({ region: 'us-west-2', profile: 'ci', followRegionRedirects: true });
    expect(credentialsFrom).toBe('the profile AWS_PROFILE=ci (~/.aws/config and ~/.aws/credentials)');
    expect(s3Settings({ ...keys, AWS_SESSION_TOKEN: 't' }).config.credentials).toEqual({ ...{ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }, sessionToken: 't' });
  });

  it('refuses an endpoint that is not an http(s) URL, naming the variable', () => {
    expect(() => s3Settings({ AWS_ENDPOINT_URL: 'ftp://minio:21' })).toThrow('AWS_ENDPOINT_URL=ftp://minio:21 must start with http:// or https://');
    expect(() => s3Settings({ AWS_ENDPOINT_URL: '127.0.0.1:9000' })).toThrow('AWS_ENDPOINT_URL=127.0.0.1:9000 is not a URL');
    expect(() => s3Settings({ AWS_ENDPOINT_URL_S3: 'not a url' })).toThrow('AWS_ENDPOINT_URL_S3=not a url is not a URL: write it as http://HOST:PORT');
  });
});

describe('openObjectStore', () => {
  it('opens s3:// URLs as S3Objects configured from env', () => {
    const store = openObjectStore('s3://twinflow/prod/', { AWS_ENDPOINT_URL: 'http://minio:9000', ...keys }) as S3Objects;
    expect(store).toBeInstanceOf(S3Objects);
    expect({ bucket: store.bucket, prefix: store.prefix, location: store.location, endpoint: store.endpoint })
      .toEqual({ bucket: 'twinflow', prefix: 'prod', location: 's3://twinflow/prod', endpoint: 'http://minio:9000' });
    store.close();
  });

  it('opens absolute folders and file:// URLs as FolderObjects', () => {
    expect(openObjectStore('/mnt/shared/twinflow')).toEqual(new FolderObjects('/mnt/shared/twinflow'));
    expect(openObjectStore('file:///mnt/shared/twinflow')).toEqual(new FolderObjects('/mnt/shared/twinflow'));
  });

  it('refuses other schemes and relative folders, saying what to use', () => {
    expect(() => openObjectStore('gs://bucket/x')).toThrow('gs:// is not a store twinflow reads; use s3://BUCKET/PREFIX (for GCS: its S3 interface');
    expect(() => openObjectStore('shared/twinflow')).toThrow('TWINFLOW_STORE=shared/twinflow is neither s3://BUCKET/PREFIX nor an absolute folder');
  });
});
