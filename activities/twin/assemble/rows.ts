import { fnv1a, type QueryKind } from '../pairs.js';
import { pickTemplate, renderQuestion } from '../prompts.js';
import type { Loaded } from './load.js';
import type { DecodedQuery, QuerySpace, SplitName } from './plan.js';

/**
 * Rows as struct-of-arrays batches over a shared vocabulary: every string a row can hold
 * (image paths, instance ids, questions) is made once, so making and writing a row is a
 * few table look-ups and no per-row allocation beyond its pair id.
 */

export const KIND_CODES: readonly QueryKind[] = ['positive', 'hard-negative', 'generated-negative'];

export interface Vocabulary {
  /** Per global image: `images/<sha256>.<ext>`, relative to the dataset folder. */
  imagePath: string[];
  /** Per global image: the first 16 hex digits of its digest (pair ids). */
  imageShort: string[];
  /** Per global instance: index into `categories`. */
  instanceCategory: Uint32Array;
  categories: string[];
  templates: readonly string[];
  /** Rendered question for category c and template t at `c * templates.length + t`. */
  questions: string[];
}

export function buildVocabulary(loaded: Loaded, extensions: string[], templates: readonly string[]): Vocabulary {
  const categories = [...new Set(loaded.instances.map((x) => x.category))].sort();
  const categoryIndex = new Map(categories.map((c, i) => [c, i]));
  return {
    imagePath: loaded.images.map((image, i) => `images/${image.sha256}.${extensions[i]}`),
    imageShort: loaded.images.map((image) => image.sha256.slice(0, 16)),
    instanceCategory: Uint32Array.from(loaded.instances, (x) => categoryIndex.get(x.category)!),
    categories,
    templates,
    questions: categories.flatMap((category) => templates.map((t) => renderQuestion(t, { category }))),
  };
}

/** A batch of consecutive rows of one split. Instance and image numbers are global. */
export interface RowBatch {
  split: SplitName;
  /** Row index (within the split) of the first row. */
  start: number;
  length: number;
  kind: Uint8Array;
  /** 1 = yes, 0 = no. */
  answer: Uint8Array;
  image1: Uint32Array;
  image2: Uint32Array;
  instance1: Uint32Array;
  instance2: Uint32Array;
  question: Uint32Array;
  pairId: string[];
}

export function emptyBatch(split: SplitName, capacity: number): RowBatch {
  return {
    split, start: 0, length: 0, kind: new Uint8Array(capacity), answer: new Uint8Array(capacity),
    image1: new Uint32Array(capacity), image2: new Uint32Array(capacity), instance1: new Uint32Array(capacity),
    instance2: new Uint32Array(capacity), question: new Uint32Array(capacity), pairId: new Array<string>(capacity).fill(''),
  };
}

/**
 * Makes rows [start, start + length) of an ordered split into `batch`. The pair id names the
 * two images regardless of order; the template and which image comes first follow from it
 * (not from the seed), so a pair reads the same in every subset. Half the pairs are shown
 * swapped, so position carries no signal (a generated image is not always image 2).
 */
export function fillBatch(batch: RowBatch, order: Uint32Array, start: number, length: number, space: QuerySpace, global: number[], vocab: Vocabulary): RowBatch {
  const q: DecodedQuery = { kind: 'positive', instance1: 0, instance2: 0, image1: 0, image2: 0 };
  const t = vocab.templates.length;
  batch.start = start;
  batch.length = length;
  for (let r = 0; r < length; r++) {
    space.decode(order[start + r]!, q);
    const a = vocab.imageShort[q.image1]!;
    const b = vocab.imageShort[q.image2]!;
    const pairId = a < b ? `${a}-${b}` : `${b}-${a}`;
    const swap = (fnv1a(`${pairId}:order`) & 1) === 1;
    const inst1 = global[q.instance1]!;
    const inst2 = global[q.instance2]!;
    batch.kind[r] = KIND_CODES.indexOf(q.kind);
    batch.answer[r] = q.kind === 'positive' ? 1 : 0;
    batch.image1[r] = swap ? q.image2 : q.image1;
    batch.image2[r] = swap ? q.image1 : q.image2;
    batch.instance1[r] = swap ? inst2 : inst1;
    batch.instance2[r] = swap ? inst1 : inst2;
    batch.question[r] = vocab.instanceCategory[inst1]! * t + vocab.templates.indexOf(pickTemplate(vocab.templates, pairId));
    batch.pairId[r] = pairId;
  }
  return batch;
}
