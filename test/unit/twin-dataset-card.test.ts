/*
 * Scenarios (the dataset card twin/assemble writes):
 * - Every combination of exports gives configs of one file format (`datasets` reads all
 *   of a card's configs with the builder of the first), Parquet whenever rows or verl are
 *   written, the sharegpt JSON only when nothing else is.
 * - The card says, for each consumer written, where it finds the images.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AssembleExport } from '../../engine/kinds/assemble.js';
import { cardConfigs, writeDatasetCard } from '../../activities/export/dataset-card.js';

const counts = { positive: 1, 'hard-negative': 2, 'generated-negative': 3, total: 6 };
const combos: AssembleExport[][] = [['rows'], ['verl'], ['sharegpt'], ['rows', 'verl'], ['rows', 'sharegpt'], ['verl', 'sharegpt'], ['rows', 'verl', 'sharegpt']];

async function card(exports: AssembleExport[], embed = false): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-card-'));
  try {
    return await fs.readFile(await writeDatasetCard(path.join(dir, 'README.md'), exports, { train: counts, eval: counts }, embed), 'utf8');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describe('the Twin dataset card', () => {
  it.each(combos.map((c) => [c.join('+'), c] as const))('gives configs of one file format for %s', (_, exports) => {
    const configs = cardConfigs(exports);
    expect(configs.length).toBeGreaterThan(0);
    const formats = new Set(configs.map((c) => c.suffix.split('.').pop()));
    expect(formats.size).toBe(1);
    expect([...formats][0]).toBe(exports.includes('rows') || exports.includes('verl') ? 'parquet' : 'json');
  });

  it('names the rows default and verl by name, and the sharegpt JSON only alone', () => {
    expect(cardConfigs(['rows', 'verl', 'sharegpt'])).toEqual([{ name: 'default', suffix: 'rows.parquet' }, { name: 'verl', suffix: 'parquet' }]);
    expect(cardConfigs(['sharegpt'])).toEqual([{ name: 'sharegpt', suffix: 'sharegpt.json' }]);
  });

  it('writes the configs as the YAML header datasets reads', async () => {
    const text = await card(['verl']);
    expect(text.startsWith(['---', 'configs:', '- config_name: verl', '  data_files:', '  - split: train', '    path: train.parquet',
      '  - split: eval', '    path: eval.parquet', '---', ''].join('\n'))).toBe(true);
  });

  it('tells each consumer where the images are', async () => {
    const all = await card(['rows', 'verl', 'sharegpt']);
    expect(all).toMatch(/Parquet files hold the bytes of their images/);
    expect(all).toMatch(/`load_dataset\("<this folder>"\)` gives the Twin rows/);
    expect(all).toMatch(/verl opens each image from its `bytes`/);
    expect(all).toMatch(/joins them to `media_dir`, which defaults to `dataset_dir`/);
    const sharegpt = await card(['sharegpt'], true);
    expect(sharegpt).not.toMatch(/Parquet/);
    expect(sharegpt).toMatch(/`load_dataset\("<this folder>"\)` reads the same records/);
    expect(await card(['verl'], true)).not.toMatch(/images\/<sha256>/);
  });
});
