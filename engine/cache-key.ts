/**
 * Cache keys of stages: a hash of what a stage does (kind and version) and exactly what
 * it receives. Artifacts count by content, not location, so the same bytes stored at
 * another path still hit the cache.
 */
import { createHash } from 'node:crypto';
import type { Json, JsonObject } from './types.js';

/** JSON with object keys sorted and no whitespace: equal values give equal text. */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value)
    .filter((key) => value[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key]!)}`).join(',')}}`;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** Whether a value is an artifact reference: an object with a string `uri` and a sha256 digest. */
export function isArtifactRef(value: Json): value is JsonObject & { uri: string; sha256: string } {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    typeof value.uri === 'string' &&
    typeof value.sha256 === 'string' &&
    SHA256.test(value.sha256)
  );
}

/** `value` with every artifact reference replaced by its digest alone. */
function byContent(value: Json): Json {
  if (isArtifactRef(value)) return { $artifact: value.sha256 };
  if (Array.isArray(value)) return value.map(byContent);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, byContent(item)]));
  }
  return value;
}

/** A shell variable holding a JSON artifact reference (or a structure of them) counts by content too. */
function shellValueByContent(text: string): Json {
  if (!/^[[{]/.test(text)) return text;
  try {
    const parsed = JSON.parse(text) as Json;
    const normalized = byContent(parsed);
    return canonicalJson(normalized) === canonicalJson(parsed) ? text : normalized;
  } catch {
    return text;
  }
}

/** What identifies one execution of a stage for the cache. */
export interface CacheKeyInput {
  uses: string;
  kindVersion: string;
  /** Resolved inputs (expressions already replaced). */
  inputs: JsonObject;
  /** Values of the shell variables that stand for expressions in shell fields. */
  shellEnv: Record<string, string>;
  /** Fingerprints of host files and folders the stage reads (see `StageKind.readsPaths`). */
  files?: Record<string, string>;
}

/** sha256 hex of the stage's kind, kind version, inputs and shell variables, artifacts by digest. */
export function stageCacheKey(input: CacheKeyInput): string {
  const shellEnv = Object.fromEntries(Object.entries(input.shellEnv).map(([key, text]) => [key, shellValueByContent(text)]));
  const material: JsonObject = {
    key: 1, // bump to invalidate every cache entry when the shape of this material changes
    uses: input.uses,
    kindVersion: input.kindVersion,
    inputs: byContent(input.inputs),
    shellEnv,
  };
  // Only when the kind reads host files, so keys of every other stage stay as they were.
  if (input.files && Object.keys(input.files).length) material.files = input.files;
  return createHash('sha256').update(canonicalJson(material)).digest('hex');
}

