import type { IdIndex } from './review-queue.js';

/**
 * Review item ids as 53-bit hashes, 9 characters each: 100,000 ids fit in 900 KB of
 * workflow input instead of the ids' own megabytes, and any id a client sends is checked
 * against them. Two lanes of a multiply-xor hash over UTF-16 code units; the activity that
 * opens a review refuses a queue in which two ids share a hash, so lookups are exact.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const CHARS = 9;

export function idHash(id: string): number {
  let a = 0x9e3779b9 ^ id.length;
  let b = 0x85ebca6b ^ id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  a = Math.imul(a ^ (a >>> 16), 0x7feb352d) ^ Math.imul(b ^ (b >>> 13), 0x846ca68b);
  b = Math.imul(b ^ (b >>> 16), 0x7feb352d) ^ Math.imul(a ^ (a >>> 15), 0x846ca68b);
  return 0x200000 * ((b >>> 0) & 0x1fffff) + (a >>> 0);
}

export function encodeHashes(ids: Iterable<string>): string {
  const out: string[] = [];
  for (const id of ids) {
    let h = idHash(id);
    let chunk = '';
    for (let k = 0; k < CHARS; k++) {
      chunk += ALPHABET[h % 64];
      h = Math.floor(h / 64);
    }
    out.push(chunk);
  }
  return out.join('');
}

/** The index of an encoded queue: hash -> position. */
export function hashIndex(encoded: string): IdIndex {
  const positions = new Map<number, number>();
  const size = encoded.length / CHARS;
  for (let p = 0; p < size; p++) {
    let h = 0;
    for (let k = CHARS - 1; k >= 0; k--) h = h * 64 + ALPHABET.indexOf(encoded[p * CHARS + k]!);
    positions.set(h, p);
  }
  return { size, indexOf: (id) => positions.get(idHash(id)) };
}
