import fs from 'node:fs/promises';
import type { RowBatch, Vocabulary } from '../twin/assemble/rows.js';
import { TextSink } from './text-sink.js';

/**
 * LLaMA-Factory's multimodal sharegpt format (data/README.md, "Multimodal Image Dataset"):
 * a JSON array of `{messages: [user, assistant], images: [path, path]}`, two `<image>`
 * tokens for two images, paths relative to the dataset folder (LLaMA-Factory's
 * `media_dir`, which defaults to `dataset_dir`). The assistant turn is the label alone,
 * `<answer>yes</answer>`: the paper's SFT baseline trained on a teacher's explanations
 * (kept only when correct), which these rows do not carry.
 */
export class ShareGptSink {
  private readonly out: TextSink;
  private readonly user: string[];
  private readonly path: string[];
  private first = true;

  constructor(readonly file: string, vocab: Vocabulary) {
    this.out = new TextSink(file);
    this.user = vocab.questions.map((q) => `{"messages":[{"role":"user","content":${JSON.stringify(`<image><image>${q}`)}},`);
    this.path = vocab.imagePath.map((p) => JSON.stringify(p));
    this.out.push('[');
  }

  async write(b: RowBatch): Promise<void> {
    const lines: string[] = new Array(b.length);
    for (let i = 0; i < b.length; i++) {
      const lead = this.first && i === 0 ? '\n' : ',\n';
      const answer = b.answer[i] ? '{"role":"assistant","content":"<answer>yes</answer>"}' : '{"role":"assistant","content":"<answer>no</answer>"}';
      lines[i] = `${lead}${this.user[b.question[i]!]}${answer}],"images":[${this.path[b.image1[i]!]},${this.path[b.image2[i]!]}]}`;
    }
    if (b.length) this.first = false;
    this.out.push(lines.join(''));
    await this.out.flush();
  }

  async close(): Promise<string> {
    this.out.push('\n]\n');
    await this.out.close();
    return this.file;
  }

  destroy(): void {
    this.out.destroy();
  }
}

/** LLaMA-Factory's dataset registry entry for each split's file (`dataset: twin` in a train config). */
export async function writeDatasetInfo(file: string, entries: Record<string, string>): Promise<string> {
  const info: Record<string, unknown> = {};
  for (const [name, fileName] of Object.entries(entries)) {
    info[name] = {
      file_name: fileName,
      formatting: 'sharegpt',
      columns: { messages: 'messages', images: 'images' },
      tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
    };
  }
  await fs.writeFile(file, `${JSON.stringify(info, null, 2)}\n`);
  return file;
}
