import { createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import { readJsonl } from '../data/jsonl.js';
import { askChat, ChatError, type ChatOptions } from './chat-client.js';

/**
 * Answers appended to a JSONL file in the stage folder the moment they arrive, so a crashed
 * worker, a cancelled run or a failed attempt resumes with only the questions still
 * unanswered (fgvqa/predict, teacher/answer).
 */
export class AnswerLog {
  private constructor(readonly file: string, readonly answers: Map<string, string>, private readonly out: WriteStream) {}

  /** The answers an earlier attempt kept for these ids; a torn last line (a crash mid-write) is ignored. */
  static async open(file: string, known: ReadonlySet<string>): Promise<AnswerLog> {
    const answers = new Map<string, string>();
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) {
      // Start appending on a fresh line, so a torn last line cannot swallow the next answer.
      if (text && !text.endsWith('\n')) await fs.appendFile(file, '\n');
      for await (const { value } of readJsonl<{ id: string; output: string }>(file, () => undefined)) {
        if (known.has(value?.id) && typeof value.output === 'string') answers.set(value.id, value.output);
      }
    }
    return new AnswerLog(file, answers, createWriteStream(file, { flags: 'a' }));
  }

  keep(id: string, output: string): void {
    this.answers.set(id, output);
    this.out.write(`${JSON.stringify({ id, output })}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.out.end(resolve));
  }
}

export interface Question {
  id: string;
  question: string;
  images: string[];
}

/** Every question to an OpenAI-compatible endpoint, `concurrency` at a time, each answer handed on as it arrives. */
export async function askEach(
  chat: ChatOptions, todo: readonly Question[], concurrency: number,
  on: { keep: (id: string, output: string) => void; fail: (id: string, error: string) => void },
): Promise<{ requests: number; retries: number }> {
  let requests = 0;
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, async () => {
    while (next < todo.length) {
      const q = todo[next++]!;
      if (chat.signal?.aborted) return;
      try {
        const { output, attempts } = await askChat(chat, q.question, q.images);
        requests += attempts;
        on.keep(q.id, output);
      } catch (err) {
        on.fail(q.id, err instanceof ChatError ? err.message : String(err));
      }
    }
  }));
  return { requests, retries: requests - todo.length };
}
