import { l2Normalize } from '../embed/matrix.js';
import { topk } from '../embed/topk.js';
import { ImageEncoder } from './baseline.js';
import type { Identity } from './queries.js';
import { SourceError } from './source-files.js';

/**
 * The identities nearest each identity, by image embedding, for harder "no" answers: each
 * identity is the normalised mean of up to `perIdentity` of its images' embeddings (the
 * first by path, so the choice is deterministic), and its neighbours are the `k` others
 * with the highest cosine, found by exact search.
 */
export async function nearestIdentities(
  identities: readonly Identity[],
  opts: { model: string; k: number; perIdentity?: number; signal?: AbortSignal; onProgress?: (done: number, total: number, what: string) => void },
): Promise<Map<string, string[]>> {
  const per = opts.perIdentity ?? 2;
  const encoder = await ImageEncoder.open(opts.model);
  const ids = [...identities];
  let dims = 0;
  let centroids = new Float32Array(0);
  try {
    const jobs = ids.flatMap((identity, row) => [...identity.images].sort().slice(0, per).map((image) => ({ row, image })));
    const BATCH = 32;
    for (let start = 0; start < jobs.length; start += BATCH) {
      if (opts.signal?.aborted) throw new Error('cancelled');
      const batch = jobs.slice(start, start + BATCH);
      const vectors = await encoder.embed(batch.map((j) => j.image)).catch(async (err: Error) => {
        // Name the image that cannot be read.
        for (const job of batch) await encoder.embed([job.image]).catch((e: Error) => { throw new SourceError(`cannot embed ${job.image}: ${e.message}`); });
        throw err;
      });
      if (!dims) {
        dims = vectors[0]!.length;
        centroids = new Float32Array(ids.length * dims);
      }
      batch.forEach((job, i) => {
        const v = vectors[i]!;
        for (let d = 0; d < dims; d++) centroids[job.row * dims + d]! += v[d]!;
      });
      opts.onProgress?.(Math.min(start + BATCH, jobs.length), jobs.length, 'images embedded');
    }
  } finally {
    await encoder.close();
  }
  for (let r = 0; r < ids.length; r++) l2Normalize(centroids.subarray(r * dims, (r + 1) * dims));
  const matrix = { data: centroids, rows: ids.length, dims };
  const found = await topk(matrix, matrix, {
    k: Math.min(opts.k, ids.length - 1),
    exclude: (q) => ({ start: q, end: q + 1 }),
    signal: opts.signal,
  });
  const out = new Map<string, string[]>();
  ids.forEach((identity, q) => {
    const list: string[] = [];
    for (let i = found.offsets[q]!; i < found.offsets[q + 1]!; i++) list.push(ids[found.indices[i]!]!.id);
    out.set(identity.id, list);
  });
  return out;
}
