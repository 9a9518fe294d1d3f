import type { ArtifactStore } from '../../activities/artifact-store.js';
import { readJsonl } from '../../activities/data/jsonl.js';
import type { ArtifactRef } from '../../engine/types.js';

/** The error a promise rejects with (or its value), for assertions on failure details. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const failure = (p: Promise<unknown>): Promise<any> => p.catch((e: unknown) => e);

/** Every row of a JSONL artifact in the store. */
export async function jsonlRows<T>(store: ArtifactStore, ref: ArtifactRef): Promise<T[]> {
  const rows: T[] = [];
  for await (const { value } of readJsonl<T>((await store.file(ref)))) rows.push(value);
  return rows;
}
