import fs from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import type { ArtifactRef } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { readJsonl } from '../data/jsonl.js';
import type { ManifestRow } from '../data/manifest.js';
import { manifestFile } from '../data/manifest-input.js';
import type { EmbedIndexRow } from '../embed/embed-images.js';
import { readMatrix, type Matrix } from '../embed/matrix.js';
import { artifactFile } from '../review/read-items.js';
import type { StageActivityInput } from '../stage-io.js';

/** A manifest joined to the embedding matrix: which matrix rows belong to which instance. */
export interface EmbeddedInstances {
  rows: ManifestRow[];
  matrix: Matrix;
  /** Matrix rows of each manifest row, in matrix order. */
  groups: number[][];
  /** Manifest row of each matrix row, or -1 when its listing is not in the manifest. */
  rowInstance: Int32Array;
  /** The index line of each matrix row (image path and digest, for review items). */
  index: EmbedIndexRow[];
  /** Matrix rows whose listing the manifest does not hold (left out). */
  unmatched: number;
}

export interface EmbeddingInputs {
  instances: ArtifactRef;
  embeddings: ArtifactRef;
  index: ArtifactRef;
}

function fail(input: StageActivityInput, message: string): never {
  throw ApplicationFailure.create({ type: 'InvalidStageInput', nonRetryable: true, message: `stage ${input.stageId} (${input.uses}): ${message}` });
}

/**
 * Rows map to instances through their listing: the index names the listing an image came
 * from, and a merged instance lists every listing (ASIN) it absorbed, so embeddings made
 * before a merge serve the merged manifest as they are.
 */
export async function loadEmbedded(store: ArtifactStore, w: EmbeddingInputs, input: StageActivityInput): Promise<EmbeddedInstances> {
  const rows: ManifestRow[] = [];
  for await (const { value } of readJsonl<ManifestRow>(await manifestFile(store, w.instances, input))) rows.push(value);
  const byListing = new Map<string, number>();
  rows.forEach((r, i) => {
    byListing.set(r.instance_id, i);
    for (const asin of r.asins ?? []) byListing.set(asin, i);
  });
  const index: EmbedIndexRow[] = [];
  for await (const { value } of readJsonl<EmbedIndexRow>(await artifactFile(store, w.index, input, 'with.index'))) index.push(value);
  const file = await artifactFile(store, w.embeddings, input, 'with.embeddings');
  const { size } = await fs.stat(file);
  const dims = w.embeddings.counts?.dims ?? (index.length ? size / 4 / index.length : 0);
  if (!Number.isInteger(dims) || dims <= 0 || size !== index.length * dims * 4) {
    fail(input, `with.embeddings (${size} bytes) does not hold ${index.length} rows of ${dims} floats as with.index says; pass the embeddings and index of the same embed/images stage`);
  }
  const matrix = await readMatrix(file, dims);
  const groups: number[][] = rows.map(() => []);
  const rowInstance = new Int32Array(matrix.rows).fill(-1);
  let unmatched = 0;
  index.forEach((entry, r) => {
    const at = byListing.get(entry.instance_id);
    if (at === undefined) { unmatched++; return; }
    rowInstance[r] = at;
    groups[at]!.push(r);
  });
  return { rows, matrix, groups, rowInstance, index, unmatched };
}
