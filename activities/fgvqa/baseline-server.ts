import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { serve, type ServerType } from '@hono/node-server';
import { answerFromEmbeddings, type ImageEncoder } from './baseline.js';

/**
 * The embedding baseline behind an OpenAI-compatible chat endpoint (`twinflow
 * serve-baseline`), so fgvqa/predict's HTTP path runs end to end against a real server:
 * POST /v1/chat/completions with the images as data URLs answers like a chat model would.
 */

const MODEL = 'embedding-baseline';

type Part = { type?: string; text?: string; image_url?: { url?: string } | string };

export function baselineApp(encoder: ImageEncoder, threshold: number): Hono {
  const app = new Hono();
  app.use('/v1/*', bodyLimit({ maxSize: 256 * 1024 * 1024, onError: (c) => c.json({ error: { message: 'request over 256 MiB' } }, 413) }));
  app.get('/v1/models', (c) => c.json({ object: 'list', data: [{ id: MODEL, object: 'model', owned_by: 'twinflow' }] }));
  app.post('/v1/chat/completions', async (c) => {
    const body = await c.req.json().catch(() => undefined) as { messages?: Array<{ role?: string; content?: string | Part[] }> } | undefined;
    const user = body?.messages?.filter((m) => m.role === 'user').pop();
    if (!user || !Array.isArray(user.content)) return c.json({ error: { message: 'send one user message whose content lists the images as image_url parts' } }, 400);
    const images: Buffer[] = [];
    for (const part of user.content) {
      if (part?.type !== 'image_url') continue;
      const url = typeof part.image_url === 'string' ? part.image_url : part.image_url?.url;
      const m = url?.match(/^data:image\/[a-z+.-]+;base64,(.+)$/i);
      if (!m) return c.json({ error: { message: 'images must be base64 data URLs (data:image/...;base64,...)' } }, 400);
      images.push(Buffer.from(m[1]!, 'base64'));
    }
    if (images.length < 2) return c.json({ error: { message: `a query needs at least two images; got ${images.length}` } }, 400);
    let vectors: Float32Array[];
    try {
      vectors = await encoder.embed(images);
    } catch (err) {
      return c.json({ error: { message: `cannot decode an image: ${(err as Error).message}` } }, 400);
    }
    const content = answerFromEmbeddings(vectors, threshold);
    return c.json({
      id: `baseline-${Date.now().toString(36)}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: MODEL,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    });
  });
  return app;
}

export async function startBaselineServer(opts: { encoder: ImageEncoder; threshold: number; host?: string; port?: number }): Promise<{ url: string; close(): Promise<void> }> {
  const host = opts.host ?? '127.0.0.1';
  let server: ServerType | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    server = serve({ fetch: baselineApp(opts.encoder, opts.threshold).fetch, hostname: host, port: opts.port ?? 8000 }, (info: AddressInfo) => resolve(info.port));
    server.once('error', reject);
  });
  return {
    url: `http://${host}:${port}/v1`,
    close: () => new Promise<void>((resolve) => { (server as { closeAllConnections?: () => void })?.closeAllConnections?.(); server?.close(() => resolve()); }),
  };
}
