import type { ArtifactStore } from '../activities/artifact-store.js';
import { readJsonl } from '../activities/data/jsonl.js';
import type { ReviewItem } from '../activities/review/items.js';
import type { ArtifactRef } from '../engine/types.js';

/** What the page gets of an item: never a host path, only the digests images are served by. */
export interface PageItem {
  id: string;
  group?: string;
  score?: number;
  question?: string;
  metadata?: Record<string, unknown>;
  images: Array<{ sha256: string; instance_id?: string; role?: string }>;
}

export interface ItemIndex {
  items: Map<string, PageItem>;
  /** Every image digest of the items: the only images this review serves. */
  images: Set<string>;
}

const loaded = new Map<string, Promise<ItemIndex>>();

/** An items artifact by id, read once per digest; the last few stay in memory. */
export function itemIndex(store: ArtifactStore, ref: ArtifactRef): Promise<ItemIndex> {
  let index = loaded.get(ref.sha256);
  if (!index) {
    index = readIndex(store, ref);
    index.catch(() => loaded.delete(ref.sha256));
    loaded.set(ref.sha256, index);
    if (loaded.size > 3) loaded.delete(loaded.keys().next().value!);
  }
  return index;
}

async function readIndex(store: ArtifactStore, ref: ArtifactRef): Promise<ItemIndex> {
  const items = new Map<string, PageItem>();
  const images = new Set<string>();
  for await (const { value: v } of readJsonl<ReviewItem>((await store.file(ref)), () => undefined)) {
    if (typeof v?.id !== 'string' || !Array.isArray(v.images)) continue;
    const pageImages = v.images.map((img) => ({ sha256: String(img.sha256), ...(img.instance_id ? { instance_id: String(img.instance_id) } : {}), ...(img.role ? { role: String(img.role) } : {}) }));
    pageImages.forEach((img) => images.add(img.sha256));
    items.set(v.id, {
      id: v.id, images: pageImages,
      ...(v.group !== undefined ? { group: String(v.group) } : {}),
      ...(typeof v.score === 'number' ? { score: v.score } : {}),
      ...(typeof v.question === 'string' ? { question: v.question } : {}),
      ...(v.metadata && typeof v.metadata === 'object' ? { metadata: v.metadata } : {}),
    });
  }
  return { items, images };
}

export { imageType } from '../activities/images/media-type.js';
