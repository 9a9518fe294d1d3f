import { createHash } from 'node:crypto';
import sharp from 'sharp';
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

/**
 * `n` items of `perItem` real JPEGs each (a coloured shape on a plain ground), stored like
 * prepared images: the review page can show them. The first image is the listing, the
 * others are the ones to compare with it.
 */
export async function putImageItems(store: ArtifactStore, n: number, extra: (i: number) => Partial<ReviewItem> = () => ({}), perItem = 2): Promise<{ ref: ArtifactRef; ids: string[]; images: string[] }> {
  const ids: string[] = [];
  const images: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `pair-${i}`;
    const pair = [];
    for (let k = 0; k < perItem; k++) {
      const hue = (i * 67 + k * 23) % 360;
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240"><rect width="320" height="240" fill="#f2efe9"/>` +
        `<circle cx="${150 + k * 20}" cy="120" r="${70 - k * 8}" fill="hsl(${hue},70%,45%)"/><text x="20" y="225" font-size="20">${id}/${k}</text></svg>`;
      const ref = await store.putBytes(await sharp(Buffer.from(svg)).jpeg({ quality: 85 }).toBuffer());
      images.push(ref.sha256);
      pair.push({ path: (await store.file(ref)), sha256: ref.sha256, instance_id: `instance-${i}-${k}`, role: k === 0 ? 'listing' : perItem > 2 ? 'candidate' : 'review' });
    }
    ids.push(id);
    lines.push(JSON.stringify({ id, images: pair, score: 0.9 - i / 100, metadata: { title: `listing ${i}`, category: 'Mugs' }, ...extra(i) }));
  }
  const ref = await store.putBytes(`${lines.join('\n')}\n`, 'application/x-twinflow-review-items+jsonl');
  return { ref, ids, images };
}
