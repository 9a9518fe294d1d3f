import type { JsonlWriter } from '../data/jsonl.js';
import type { ManifestImage, ManifestRow } from '../data/manifest.js';
import type { ReviewItem } from '../review/items.js';

/** What people are asked of every generated image, whichever kind made it. */
export const SYNTH_QUESTION = 'Is the second image a plausible different instance of this product — not identical, not unlike it?';

/** The two outputs of a kind that generates negatives: the generated-images manifest and its review items. */
export interface GeneratedWriters { generated: JsonlWriter; items: JsonlWriter }

/** A generated image and the real image of its instance that a reviewer sees beside it. */
export interface Generated<I extends ManifestImage & { sha256: string }> {
  image: I;
  source: ManifestImage & { sha256: string };
}

/**
 * Writes one instance's generated images: a manifest row holding them (the instance's
 * fields, images all role "generated") and a `gen:<sha256>` review item per image, grouped
 * by instance, showing [real source, generated]. `metadata` adds what made the image.
 */
export async function writeGenerated<I extends ManifestImage & { sha256: string }>(
  writers: GeneratedWriters, row: Pick<ManifestRow, 'instance_id' | 'asins' | 'title' | 'category' | 'supercategory'>,
  made: Array<Generated<I>>, metadata: (image: I) => Record<string, unknown>,
): Promise<void> {
  if (made.length === 0) return;
  const { instance_id, asins, title, category, supercategory } = row;
  await writers.generated.write({ instance_id, asins, title, category, ...(supercategory !== undefined ? { supercategory } : {}), images: made.map((m) => m.image) });
  for (const { image, source } of made) {
    const item: ReviewItem = {
      id: `gen:${image.sha256}`,
      group: instance_id,
      images: [
        { sha256: source.sha256, instance_id, role: source.role },
        { sha256: image.sha256, instance_id, role: 'generated' },
      ],
      question: SYNTH_QUESTION,
      metadata: { instance_id, title, category, ...metadata(image) },
    };
    await writers.items.write(item);
  }
}
