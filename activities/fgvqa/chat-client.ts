import fs from 'node:fs/promises';
import { imageType } from '../images/media-type.js';

/**
 * One question to an OpenAI-compatible chat endpoint: the text and every image (as a
 * base64 data URL) in one user message, greedy decoding. 429, 5xx, timeouts, refused
 * connections and unreadable answers are retried with exponential backoff (and
 * Retry-After when the server sends one); anything else fails at once.
 */

export interface ChatOptions {
  endpoint: string;
  model: string;
  apiKey?: string;
  maxTokens: number;
  timeoutMs: number;
  retries: number;
  /** Aborts waiting and in-flight requests (the activity's cancellation). */
  signal?: AbortSignal;
  /** Base backoff in ms, doubled per retry. @default 500 */
  backoffMs?: number;
}

/** A request that will not succeed by trying again; the message never holds the key. */
export class ChatError extends Error {
  constructor(message: string, readonly retryable: boolean) {
    super(message);
  }
}

const recent = new Map<string, Promise<string>>();

/**
 * An image as a data URL. FGVQA queries share images, so the last 64 are kept encoded,
 * keyed by path, size and modification time (a changed file is read again).
 */
export async function imageDataUrl(file: string): Promise<string> {
  const stat = await fs.stat(file).catch(() => { throw new ChatError(`cannot read image ${file}`, false); });
  const key = `${file}\0${stat.size}\0${stat.mtimeMs}`;
  let url = recent.get(key);
  if (!url) {
    url = fs.readFile(file).then(
      (bytes) => `data:${imageType(bytes.subarray(0, 12))};base64,${bytes.toString('base64')}`,
      () => { recent.delete(key); throw new ChatError(`cannot read image ${file}`, false); },
    );
    recent.set(key, url);
    if (recent.size > 64) recent.delete(recent.keys().next().value!);
  }
  return url;
}

export async function askChat(opts: ChatOptions, question: string, images: string[]): Promise<{ output: string; attempts: number }> {
  const content = [{ type: 'text', text: question }, ...(await Promise.all(images.map(async (img) => ({ type: 'image_url', image_url: { url: await imageDataUrl(img) } }))))];
  const body = JSON.stringify({ model: opts.model, messages: [{ role: 'user', content }], temperature: 0, max_tokens: opts.maxTokens });
  const url = `${opts.endpoint.replace(/\/+$/, '')}/chat/completions`;
  for (let attempt = 1; ; attempt++) {
    try {
      return { output: await once(url, body, opts), attempts: attempt };
    } catch (err) {
      const e = err instanceof ChatError ? err : new ChatError(describe(err), true);
      if (!e.retryable || attempt > opts.retries || opts.signal?.aborted) throw new ChatError(`${e.message} (after ${attempt} attempt${attempt === 1 ? '' : 's'})`, false);
      const wait = (err as { retryAfterMs?: number }).retryAfterMs ?? (opts.backoffMs ?? 500) * 2 ** (attempt - 1) * (0.75 + Math.random() / 2);
      await sleep(Math.min(wait, 60_000), opts.signal);
    }
  }
}

async function once(url: string, body: string, opts: ChatOptions): Promise<string> {
  const signals = [AbortSignal.timeout(opts.timeoutMs), ...(opts.signal ? [opts.signal] : [])];
  const res = await fetch(url, {
    method: 'POST', body, signal: AbortSignal.any(signals),
    headers: { 'Content-Type': 'application/json', ...(opts.apiKey ? { Authorization: `Bearer ${opts.apiKey}` } : {}) },
  });
  const text = await res.text();
  if (res.status === 429 || res.status >= 500) {
    const retryAfter = Number(res.headers.get('retry-after'));
    throw Object.assign(new ChatError(`HTTP ${res.status} from ${url}`, true), Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {});
  }
  if (!res.ok) throw new ChatError(`HTTP ${res.status} from ${url}: ${text.slice(0, 200)}`, false);
  let output: unknown;
  try {
    output = (JSON.parse(text) as { choices?: Array<{ message?: { content?: unknown } }> }).choices?.[0]?.message?.content;
  } catch {
    throw new ChatError(`an answer that is not JSON from ${url}: ${text.slice(0, 80)}`, true);
  }
  if (typeof output !== 'string') throw new ChatError(`an answer without choices[0].message.content from ${url}`, true);
  return output;
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'the request timed out';
  if (e?.name === 'AbortError') return 'the request was cancelled';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}
