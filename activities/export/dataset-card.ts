import fs from 'node:fs/promises';
import type { AssembleExport } from '../../engine/kinds/assemble.js';
import type { CountsWithTotal } from './stats.js';

/**
 * The dataset folder's README.md: a Hugging Face dataset card whose `configs` header lets
 * `datasets.load_dataset("<folder>", name)` find each config's files, and a page a person
 * reads to know what each file is and how each tool finds the images.
 *
 * `datasets` picks one builder for every config of a card, from the files of the first
 * one, so the configs are all Parquet (the Twin rows and verl), or, when no Parquet is
 * written, the sharegpt JSON alone.
 */

interface CardConfig {
  name: string;
  /** File of each split: `train.<suffix>` and `eval.<suffix>`. */
  suffix: string;
}

export function cardConfigs(exports: readonly AssembleExport[]): CardConfig[] {
  const configs: CardConfig[] = [];
  if (exports.includes('rows')) configs.push({ name: 'default', suffix: 'rows.parquet' });
  if (exports.includes('verl')) configs.push({ name: 'verl', suffix: 'parquet' });
  if (configs.length === 0 && exports.includes('sharegpt')) configs.push({ name: 'sharegpt', suffix: 'sharegpt.json' });
  return configs;
}

function header(configs: readonly CardConfig[]): string[] {
  const lines = ['---', 'configs:'];
  for (const { name, suffix } of configs) {
    lines.push(`- config_name: ${name}`, '  data_files:');
    for (const split of ['train', 'eval']) lines.push(`  - split: ${split}`, `    path: ${split}.${suffix}`);
  }
  return [...lines, '---'];
}

export async function writeDatasetCard(
  file: string, exports: readonly AssembleExport[], counts: { train: CountsWithTotal; eval: CountsWithTotal }, embed: boolean,
): Promise<string> {
  const line = (name: string, c: CountsWithTotal) =>
    `| ${name} | ${c.positive} | ${c['hard-negative']} | ${c['generated-negative']} | ${c.total} |`;
  const text = [
    ...header(cardConfigs(exports)), '',
    '# Twin pair queries', '',
    'Made by twinflow `twin/assemble`. Each row asks whether two images show the same object instance.',
    'Twin (train) and Twin-Eval (eval) have disjoint instances and so disjoint images.', '',
    '| split | positive (yes) | hard negative (no) | generated negative (no) | total |',
    '|---|---|---|---|---|',
    line('Twin (train)', counts.train), line('Twin-Eval (eval)', counts.eval), '',
    '## Loading, from any working directory', '',
    ...loadingLines(exports), '',
    '## Files', '',
    ...fileLines(exports, embed),
    '- `stats.json`, `queries-per-instance.svg`: counts by split, kind and category, images, decisions used, and Fig. 2b.',
    '',
  ].join('\n');
  await fs.writeFile(file, text);
  return file;
}

function loadingLines(exports: readonly AssembleExport[]): string[] {
  const lines: string[] = [];
  const parquet = exports.includes('rows') || exports.includes('verl');
  if (parquet) {
    lines.push(
      'Parquet files hold the bytes of their images, as `{bytes, path}` (the Hugging Face `Image` layout; `path` only names the image).',
      'Neither `datasets` nor verl has a setting for a folder that relative paths would be joined to: such a path resolves against the',
      "reader's working directory, and an absolute one only on the host that wrote it. Bytes travel with the file.",
      '',
    );
  }
  if (exports.includes('rows')) {
    lines.push('- `datasets`: `load_dataset("<this folder>")` gives the Twin rows; `image_1` and `image_2` decode to PIL images.');
  }
  if (exports.includes('verl')) {
    lines.push(
      '- verl: `data.train_files=<this folder>/train.parquet data.val_files=<this folder>/eval.parquet`; verl opens each image from its `bytes`.',
      '  `load_dataset("<this folder>", "verl")` reads the same rows, images as `{bytes, path}` dicts.',
    );
  }
  if (exports.includes('sharegpt')) {
    lines.push(
      '- LLaMA-Factory: `dataset_dir: <this folder>` and `dataset: twin` in the train config. Image paths are relative to this folder;',
      '  LLaMA-Factory joins them to `media_dir`, which defaults to `dataset_dir` (set `media_dir: <this folder>` if `dataset_dir` is another folder).',
    );
    if (!parquet) lines.push('  `load_dataset("<this folder>")` reads the same records, image paths as written.');
  }
  if (exports.includes('rows')) {
    lines.push('- `train.jsonl`, `eval.jsonl` keep the published Twin shape: image paths relative to this folder (join them to it).');
  }
  return lines;
}

function fileLines(exports: readonly AssembleExport[], embed: boolean): string[] {
  const lines: string[] = [];
  if (exports.includes('rows') || exports.includes('sharegpt') || !embed) {
    const named = exports.includes('rows') || exports.includes('sharegpt') ? '; the JSON files name images by these paths, relative to this folder' : '';
    lines.push(`- \`images/<sha256>.<ext>\`: every image the rows use, once${named}.`);
  }
  if (exports.includes('rows')) {
    lines.push(
      '- `train.jsonl`, `eval.jsonl`: the published Twin row shape, `question`, `answer` (yes/no), `image_1`, `image_2`.',
      '- `train.meta.jsonl`, `eval.meta.jsonl`: line for line, `index`, `pair_id`, `kind`, `category`, `instance_1`, `instance_2`.',
      '- `train.rows.parquet`, `eval.rows.parquet` (config `default`): the same rows with both files\' columns, images as bytes.',
    );
  }
  if (exports.includes('verl')) {
    lines.push('- `train.parquet`, `eval.parquet` (config `verl`): verl RL data (`prompt` with two `<image>` tokens, `images` as bytes, ' +
      '`reward_model.ground_truth`, `extra_info`).');
  }
  if (exports.includes('sharegpt')) {
    lines.push(
      '- `train.sharegpt.json`, `eval.sharegpt.json` and `dataset_info.json`: LLaMA-Factory sharegpt data (`dataset: twin`, `twin_eval`).',
      "  The assistant turn is the label alone (`<answer>yes</answer>`); the paper's SFT baseline trained on a teacher model's explanations, kept only when correct, which these rows do not include.",
    );
  }
  return lines;
}
