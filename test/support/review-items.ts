import { createHash } from 'node:crypto';
import { ArtifactStore } from '../../activities/artifact-store.js';
import type { ReviewItem } from '../../activities/review/items.js';
import type { ArtifactRef } from '../../engine/types.js';

/** `n` review items (`item-0000`, ...) in the store; images are named by digest only. */
export async function putReviewItems(store: ArtifactStore, n: number, extra: (i: number) => Partial<ReviewItem> = () => ({})): Promise<{ ref: ArtifactRef; ids: string[] }> {
  const ids: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `item-${String(i).padStart(6, '0')}`;
    ids.push(id);
    const image = (k: number) => ({ path: `/nowhere/${id}-${k}.jpg`, sha256: createHash('sha256').update(`${id}/${k}`).digest('hex'), instance_id: `inst-${i}-${k}` });
    lines.push(JSON.stringify({ id, images: [image(0), image(1)], score: 1 - i / (n + 1), ...extra(i) }));
  }
  const ref = await store.putBytes(`${lines.join('\n')}\n`, 'application/x-twinflow-review-items+jsonl');
  return { ref, ids };
}

/** A pipeline with one `core/review` stage over `items` and a stage after it that shows the run went on. */
export function reviewPipeline(items: ArtifactRef, review: Record<string, unknown> = {}): string {
  return JSON.stringify({
    name: 'review-test',
    stages: {
      check: { uses: 'core/review', with: { items, title: 'Same object?', ...review } },
      after: { uses: 'core/noop', needs: ['check'], with: { outputs: { decisions: '${{ stages.check.outputs.decisions.uri }}' } } },
    },
  });
}
