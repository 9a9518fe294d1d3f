import fs from 'node:fs/promises';
import type { ArtifactRef } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { describeProblems, readJsonl, type JsonlProblem } from '../data/jsonl.js';
import type { ManifestRow } from '../data/manifest.js';
import { artifactFile, manifestFile, readManifestRows } from '../data/manifest-input.js';
import type { EmbedIndexRow } from '../embed/embed-images.js';
import { pickRows, readMatrix, type Matrix } from '../embed/matrix.js';
import type { ReviewImage } from '../review/items.js';
import type { StageActivityInput } from '../stage-io.js';
import { invalidInput } from '../failures.js';

/** What a similarity stage reads: a manifest and the output of embed/images. */
export interface EmbeddedInputs {
  instances: ArtifactRef;
  embeddings: ArtifactRef;
  index: ArtifactRef;
  /** Columns of the matrix; else the embeddings' counts.dims; else the file size over the index rows. */
  dims?: number;
}

/**
 * The real (listing and review) images of every instance as one matrix, instance after
 * instance in manifest order, so an instance's rows are contiguous.
 */
export interface InstanceMatrix {
  /** Every manifest row, in order. */
  rows: ManifestRow[];
  matrix: Matrix;
  /** Instance i owns matrix rows [starts[i], starts[i + 1]). */
  starts: Int32Array;
  /** The instance (manifest position) of each matrix row. */
  owner: Int32Array;
  /** The image of each matrix row, as a reviewer sees it. */
  images: ReviewImage[];
}

function fail(input: StageActivityInput, message: string): never {
  throw invalidInput(`stage ${input.stageId} (${input.uses}): ${message}`);
}

/**
 * Joins a manifest to an embedding matrix through each image's sha256: the same bytes
 * have the same embedding, so this holds for the manifest that was embedded and for one
 * merged from it, where an instance holds images indexed under other listings. Generated
 * images are left out. `strict` (the manifest must be the one embedded) also refuses index
 * rows whose listing or image the manifest lacks; otherwise those rows are ignored.
 */
export async function loadInstanceMatrix(
  store: ArtifactStore, w: EmbeddedInputs, input: StageActivityInput, opts: { strict: boolean },
): Promise<InstanceMatrix> {
  const rows = await readManifestRows(await manifestFile(store, w.instances, input), input);
  const index = await readIndex(await artifactFile(store, w.index, input, 'with.index'), input);
  const full = await readEmbeddings(await artifactFile(store, w.embeddings, input, 'with.embeddings'), w, index.length, input);
  const rowOf = rowsBySha(index, full.rows, input);
  if (opts.strict) checkIndexAgainst(rows, index, input);
  const starts = new Int32Array(rows.length + 1);
  const picked: number[] = [];
  const images: ReviewImage[] = [];
  rows.forEach((row, i) => {
    const seen = new Set<string>();
    for (const image of row.images) {
      if (image.role === 'generated' || seen.has(image.sha256 ?? '')) continue;
      if (!image.sha256) fail(input, `instance ${row.instance_id}: image ${image.path ?? image.origin} has no sha256; run images/prepare (and embed/images) on this manifest first`);
      const at = rowOf.get(image.sha256);
      if (at === undefined) {
        fail(input, `instance ${row.instance_id}: image ${image.origin ?? ''} (sha256 ${image.sha256.slice(0, 12)}…) has no row in with.index; ` +
          'pass the embeddings of this manifest, or of the manifest it was merged from');
      }
      seen.add(image.sha256);
      picked.push(at);
      images.push({ sha256: image.sha256, instance_id: row.instance_id, role: image.role });
    }
    starts[i + 1] = picked.length;
  });
  const owner = new Int32Array(picked.length);
  rows.forEach((_, i) => owner.fill(i, starts[i]!, starts[i + 1]!));
  return { rows, matrix: pickRows(full, picked), starts, owner, images };
}

/**
 * The instances `members` (manifest positions, ascending) as an InstanceMatrix of their own,
 * with `rowOf` mapping its matrix rows back to the set's. Instance order and the order of
 * rows within an instance are kept, so ties broken by position break the same way.
 */
export function subsetOf(set: InstanceMatrix, members: ArrayLike<number>): { subset: InstanceMatrix; rowOf: Int32Array } {
  const starts = new Int32Array(members.length + 1);
  for (let i = 0; i < members.length; i++) starts[i + 1] = starts[i]! + set.starts[members[i]! + 1]! - set.starts[members[i]!]!;
  const rowOf = new Int32Array(starts[members.length]!);
  const owner = new Int32Array(rowOf.length);
  const rows: ManifestRow[] = [];
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    rows.push(set.rows[m]!);
    for (let r = starts[i]!; r < starts[i + 1]!; r++) rowOf[r] = set.starts[m]! + r - starts[i]!;
    owner.fill(i, starts[i]!, starts[i + 1]!);
  }
  const subset = { rows, matrix: pickRows(set.matrix, rowOf), starts, owner, images: Array.from(rowOf, (r) => set.images[r]!) };
  return { subset, rowOf };
}

/** How many instances have all their rows among the first `doneRows` (for progress). */
export function instancesDone(set: InstanceMatrix, doneRows: number): number {
  let lo = 0;
  let hi = set.rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (set.starts[mid + 1]! <= doneRows) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

async function readIndex(file: string, input: StageActivityInput): Promise<EmbedIndexRow[]> {
  const problems: JsonlProblem[] = [];
  const index: EmbedIndexRow[] = [];
  for await (const { value, line } of readJsonl<EmbedIndexRow>(file, (p) => problems.push(p))) {
    if (Number.isInteger(value?.row) && typeof value.instance_id === 'string' && typeof value.sha256 === 'string') index.push(value);
    else problems.push({ file, line, message: 'an index row needs row, instance_id and sha256' });
  }
  if (problems.length) fail(input, `with.index has ${describeProblems(problems)}; pass the index output of embed/images`);
  return index;
}

async function readEmbeddings(file: string, w: EmbeddedInputs, indexRows: number, input: StageActivityInput): Promise<Matrix> {
  const { size } = await fs.stat(file);
  const stated = w.dims ?? w.embeddings.counts?.dims;
  const dims = stated ?? (indexRows > 0 ? size / 4 / indexRows : 0);
  const source = w.dims !== undefined ? 'with.dims' : stated !== undefined ? 'with.embeddings.counts.dims' : 'its size over the index rows';
  if (!Number.isInteger(dims) || dims < 1 || size !== indexRows * dims * 4) {
    fail(input, `with.embeddings is ${size} bytes, but with.index has ${indexRows} rows of ${dims} float32s (dims from ${source}), ` +
      `which is ${indexRows * (Number.isFinite(dims) ? dims : 0) * 4} bytes; pass the embeddings and index of the same embed/images stage`);
  }
  return readMatrix(file, dims);
}

/** The first matrix row of each image digest. */
function rowsBySha(index: EmbedIndexRow[], rows: number, input: StageActivityInput): Map<string, number> {
  const rowOf = new Map<string, number>();
  for (const entry of index) {
    if (entry.row < 0 || entry.row >= rows) fail(input, `with.index names matrix row ${entry.row}, but the matrix has ${rows} rows; pass the index of the same embed/images stage`);
    if (!rowOf.has(entry.sha256)) rowOf.set(entry.sha256, entry.row);
  }
  return rowOf;
}

function checkIndexAgainst(rows: ManifestRow[], index: EmbedIndexRow[], input: StageActivityInput): void {
  const held = new Map(rows.map((r) => [r.instance_id, new Set(r.images.map((im) => im.sha256))]));
  for (const entry of index) {
    const images = held.get(entry.instance_id);
    if (images?.has(entry.sha256)) continue;
    fail(input, `with.index row ${entry.row} is image ${entry.sha256.slice(0, 12)}… of instance ${entry.instance_id}, which with.instances ` +
      `${images ? 'does not list for that instance' : 'does not hold'}; pass the manifest that embed/images read`);
  }
}
