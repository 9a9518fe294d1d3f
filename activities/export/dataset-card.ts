import fs from 'node:fs/promises';
import type { AssembleExport } from '../../engine/kinds/assemble.js';
import type { CountsWithTotal } from './stats.js';

/**
 * The dataset folder's README.md: a Hugging Face dataset card whose `configs` header lets
 * `datasets.load_dataset("<folder>")` (rows) and `load_dataset("<folder>", "verl")` find
 * the right files, and a page a person reads to know what each file is.
 */
export async function writeDatasetCard(
  file: string, exports: readonly AssembleExport[], counts: { train: CountsWithTotal; eval: CountsWithTotal }, embed: boolean,
): Promise<string> {
  const configs: string[] = [];
  const config = (name: string, ext: string) =>
    configs.push(`- config_name: ${name}`, '  data_files:', `  - split: train`, `    path: train.${ext}`, `  - split: eval`, `    path: eval.${ext}`);
  if (exports.includes('rows')) config('default', 'jsonl');
  if (exports.includes('verl')) config('verl', 'parquet');
  const line = (name: string, c: CountsWithTotal) =>
    `| ${name} | ${c.positive} | ${c['hard-negative']} | ${c['generated-negative']} | ${c.total} |`;
  const text = [
    '---', 'configs:', ...configs, '---', '',
    '# Twin pair queries', '',
    'Made by twinflow `twin/assemble`. Each row asks whether two images show the same object instance.',
    'Twin (train) and Twin-Eval (eval) have disjoint instances and so disjoint images.', '',
    '| split | positive (yes) | hard negative (no) | generated negative (no) | total |',
    '|---|---|---|---|---|',
    line('Twin (train)', counts.train), line('Twin-Eval (eval)', counts.eval), '',
    '## Files', '',
    ...fileLines(exports, embed),
    '- `stats.json`, `queries-per-instance.svg`: counts by split, kind and category, images, decisions used, and Fig. 2b.',
    '',
  ].join('\n');
  await fs.writeFile(file, text);
  return file;
}

function fileLines(exports: readonly AssembleExport[], embed: boolean): string[] {
  const lines: string[] = [];
  if (exports.includes('rows') || exports.includes('sharegpt') || !embed) {
    lines.push('- `images/<sha256>.<ext>`: every image the rows use, once; all paths in the rows are relative to this folder.');
  }
  if (exports.includes('rows')) {
    lines.push(
      '- `train.jsonl`, `eval.jsonl`: the published Twin row shape, `question`, `answer` (yes/no), `image_1`, `image_2`.',
      '- `train.meta.jsonl`, `eval.meta.jsonl`: line for line, `index`, `pair_id`, `kind`, `category`, `instance_1`, `instance_2`.',
    );
  }
  if (exports.includes('verl')) {
    lines.push('- `train.parquet`, `eval.parquet`: verl RL data (`prompt` with two `<image>` tokens, `images`, `reward_model.ground_truth`, `extra_info`).' +
      (embed ? ' Image bytes are inside the file.' : ' Image paths are relative: run verl from this folder.'));
  }
  if (exports.includes('sharegpt')) {
    lines.push(
      '- `train.sharegpt.json`, `eval.sharegpt.json` and `dataset_info.json`: LLaMA-Factory sharegpt data (`dataset_dir: <this folder>`, `dataset: twin`).',
      "  The assistant turn is the label alone (`<answer>yes</answer>`); the paper's SFT baseline trained on a teacher model's explanations, kept only when correct, which these rows do not include.",
    );
  }
  return lines;
}
