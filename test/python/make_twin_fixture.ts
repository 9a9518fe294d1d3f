/**
 * Builds two small Twin datasets for the pytest read-back tests:
 *   npx tsx test/python/make_twin_fixture.ts <dir>
 * writes <dir>/folder (every export, images as files beside the rows), <dir>/embed (verl
 * alone, image bytes in the parquet, no folder) and <dir>/sharegpt (LLaMA-Factory alone),
 * and prints {"folder": {...outputs}, "embed": {...}, "sharegpt": {...}} as JSON.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { homeLayout } from '../../activities/home.js';
import { buildTwinFixture, runAssemble } from './twin-fixture.js';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: npx tsx test/python/make_twin_fixture.ts <dir>');
  process.exit(2);
}
const home = homeLayout(path.resolve(dir, 'home'));
await fs.mkdir(home.root, { recursive: true });
const fixture = await buildTwinFixture(home, {
  real: [4, 3, 5, 2, 3, 4, 1, 3, 4, 2],
  generated: [2, 1, 0, 2, 1, 1, 0, 1, 2, 1],
  rejectGenerated: [1, 4],
  hard: [{ a: 0, b: 2 }, { a: 2, b: 0 }, { a: 1, b: 3 }, { a: 4, b: 5 }, { a: 6, b: 7, accept: false }, { a: 8, b: 9 }, { a: 0, b: 9 }],
});
const folder = await runAssemble(home, { ...fixture.with, evalInstances: 3, seed: 1, out: path.resolve(dir, 'folder') }, undefined, 'folder');
const embed = await runAssemble(home, { ...fixture.with, evalInstances: 3, seed: 1, images: 'embed', exports: ['verl'], out: path.resolve(dir, 'embed') }, undefined, 'embed');
const sharegpt = await runAssemble(home, { ...fixture.with, evalInstances: 3, seed: 1, exports: ['sharegpt'], out: path.resolve(dir, 'sharegpt') }, undefined, 'sharegpt');
console.log(JSON.stringify({ folder, embed, sharegpt }));
