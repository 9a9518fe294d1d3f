import { l2Normalize } from '../embed/matrix.js';
import { topk } from '../embed/topk.js';
import { ImageEncoder } from './baseline.js';
import type { Identity } from './queries.js';
import { SourceError } from './source-files.js';

const BATCH = 32;

export interface NearestOptions {
  model: string;
  k: number;
  perIdentity?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, what: string) => void;
  /**
   * An image the encoder cannot read: it is left out of its identity's mean and reading
   * goes on. Without it, such an image fails the call with its path.
   */
  onSkip?: (identity: string, image: string, why: string) => void;
}

/**
 * The identities nearest each identity, by image embedding, for harder "no" answers: each
 * identity is the normalised mean of up to `perIdentity` of its images' embeddings (the
 * first by path, so the choice is deterministic), and its neighbours are the `k` others
 * with the highest cosine, found by exact search. An identity with no readable image has
 * no neighbours and is nobody's.
 */
export async function nearestIdentities(identities: readonly Identity[], opts: NearestOptions): Promise<Map<string, string[]>> {
  const per = opts.perIdentity ?? 2;
  const jobs = identities.flatMap((identity, row) => [...identity.images].sort().slice(0, per).map((image) => ({ row, image })));
  const { sums, dims } = await embedSums(identities, jobs, opts);
  const rows = identities.flatMap((_, r) => (sums[r] ? [r] : []));
  const out = new Map<string, string[]>(identities.map((identity) => [identity.id, []]));
  if (rows.length < 2) return out;
  const data = new Float32Array(rows.length * dims);
  rows.forEach((r, q) => {
    data.set(sums[r]!, q * dims);
    l2Normalize(data.subarray(q * dims, (q + 1) * dims));
  });
  const matrix = { data, rows: rows.length, dims };
  const found = await topk(matrix, matrix, { k: Math.min(opts.k, rows.length - 1), exclude: (q) => ({ start: q, end: q + 1 }), signal: opts.signal });
  rows.forEach((r, q) => {
    const list: string[] = [];
    for (let i = found.offsets[q]!; i < found.offsets[q + 1]!; i++) list.push(identities[rows[found.indices[i]!]!]!.id);
    out.set(identities[r]!.id, list);
  });
  return out;
}

/** The sum of each identity's image embeddings (undefined for one with none), in batches. */
async function embedSums(identities: readonly Identity[], jobs: Array<{ row: number; image: string }>, opts: NearestOptions) {
  const encoder = await ImageEncoder.open(opts.model);
  const sums: Array<Float32Array | undefined> = new Array(identities.length);
  let dims = 0;
  try {
    for (let start = 0; start < jobs.length; start += BATCH) {
      if (opts.signal?.aborted) throw new Error('cancelled');
      const batch = jobs.slice(start, start + BATCH);
      const vectors = await encoder.embed(batch.map((j) => j.image)).catch(() => oneByOne(encoder, batch, identities, opts));
      batch.forEach((job, i) => {
        const v = vectors[i];
        if (!v) return;
        dims = v.length;
        const sum = (sums[job.row] ??= new Float32Array(dims));
        for (let d = 0; d < dims; d++) sum[d]! += v[d]!;
      });
      opts.onProgress?.(Math.min(start + BATCH, jobs.length), jobs.length, 'images embedded');
    }
  } finally {
    await encoder.close();
  }
  return { sums, dims };
}

/** A batch that failed, image by image: the ones the encoder cannot read are skipped (or, without onSkip, named in the error). */
async function oneByOne(encoder: ImageEncoder, batch: Array<{ row: number; image: string }>, identities: readonly Identity[], opts: NearestOptions) {
  const out: Array<Float32Array | undefined> = [];
  for (const job of batch) {
    try {
      out.push((await encoder.embed([job.image]))[0]);
    } catch (err) {
      const why = (err as Error).message;
      if (!opts.onSkip) throw new SourceError(`cannot embed ${job.image}: ${why}`);
      opts.onSkip(identities[job.row]!.id, job.image, why);
      out.push(undefined);
    }
  }
  return out;
}
