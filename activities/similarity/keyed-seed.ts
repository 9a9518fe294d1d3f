import { createHash } from 'node:crypto';
import { seededRandom } from '../twin/pairs.js';

/**
 * A 32-bit seed for one (seed, key) pair: the first four bytes of sha256("<seed>\0<key>").
 * Keying draws by instance id rather than taking them in turn from one stream means an
 * instance's draw does not change when others are added, removed or reordered.
 */
export function keyedSeed(seed: number, key: string): number {
  return createHash('sha256').update(`${seed}\u0000${key}`).digest().readUInt32LE(0);
}

/** The mulberry32 generator of activities/twin/pairs.ts, seeded for one (seed, key) pair. */
export function keyedRandom(seed: number, key: string): () => number {
  return seededRandom(keyedSeed(seed, key));
}
