import { describe, expect, it } from 'vitest';
import { canonicalJson, isArtifactRef, stageCacheKey, type CacheKeyInput } from '../../engine/cache-key.js';

const digest = 'a'.repeat(64);
const base: CacheKeyInput = { uses: 'core/shell', kindVersion: '1', inputs: { run: 'echo "${TWINFLOW_EXPR_0}"', n: 3 }, shellEnv: { TWINFLOW_EXPR_0: 'hi' } };

describe('canonicalJson', () => {
  it('sorts keys at every depth and leaves out whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: null, y: 'x' }], c: true } })).toBe('{"a":{"c":true,"d":[2,{"y":"x","z":null}]},"b":1}');
  });

  it('keeps array order, which is meaningful', () => {
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]));
  });
});

describe('stageCacheKey', () => {
  it('is a sha256 hex digest', () => {
    expect(stageCacheKey(base)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on the order of keys', () => {
    const reordered: CacheKeyInput = { shellEnv: { ...base.shellEnv }, inputs: { n: 3, run: base.inputs.run! }, kindVersion: '1', uses: 'core/shell' };
    expect(stageCacheKey(reordered)).toBe(stageCacheKey(base));
  });

  it('changes with the kind, its version, the inputs and the shell variables', () => {
    const key = stageCacheKey(base);
    expect(stageCacheKey({ ...base, uses: 'core/noop' })).not.toBe(key);
    expect(stageCacheKey({ ...base, kindVersion: '2' })).not.toBe(key);
    expect(stageCacheKey({ ...base, inputs: { ...base.inputs, n: 4 } })).not.toBe(key);
    expect(stageCacheKey({ ...base, shellEnv: { TWINFLOW_EXPR_0: 'ho' } })).not.toBe(key);
  });

  it('counts an artifact by its sha256 only, so the same bytes at another path hit', () => {
    const at = (uri: string, sha256 = digest) => stageCacheKey({ ...base, inputs: { images: { uri, sha256, bytes: 10, counts: { images: 2 } } } });
    expect(at('file:///store/a')).toBe(at('s3://bucket/elsewhere'));
    expect(at('file:///store/a')).not.toBe(at('file:///store/a', 'b'.repeat(64)));
  });

  it('counts artifacts passed to a shell through variables by their sha256 too', () => {
    const env = (uri: string) => stageCacheKey({ ...base, shellEnv: { TWINFLOW_EXPR_0: JSON.stringify({ uri, sha256: digest, bytes: 3 }) } });
    expect(env('file:///a')).toBe(env('file:///b'));
  });

  it('treats an object with a uri but no real digest as plain data', () => {
    expect(isArtifactRef({ uri: 'file:///a', sha256: 'short' })).toBe(false);
    const plain = (uri: string) => stageCacheKey({ ...base, inputs: { ref: { uri, sha256: 'short' } } });
    expect(plain('file:///a')).not.toBe(plain('file:///b'));
  });
});
