import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A test double of an OpenAI-compatible chat endpoint whose answers a test scripts:
 * normal answers, 429 / 500, garbage, or a hang. It records every request (path, auth
 * header, parsed body) and the most requests it had in flight at once. Not a model.
 */
export interface ScriptedReply {
  status?: number;
  /** A chat answer's content (wrapped in the usual response shape), unless `raw` is given. */
  content?: string;
  raw?: string;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Never answer (the client's timeout must act). */
  hang?: boolean;
}

export interface SeenRequest {
  path: string;
  auth?: string;
  body: { model: string; temperature: number; max_tokens: number; messages: Array<{ role: string; content: Array<{ type: string; text?: string; image_url?: { url: string } }> }> };
}

export async function startScriptedChatServer(script: (req: SeenRequest, n: number) => ScriptedReply) {
  const seen: SeenRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', async () => {
      const request: SeenRequest = { path: req.url ?? '', auth: req.headers.authorization, body: JSON.parse(data) };
      seen.push(request);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const reply = script(request, seen.length);
      if (reply.hang) return;
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
      inFlight--;
      res.writeHead(reply.status ?? 200, { 'Content-Type': 'application/json', ...reply.headers });
      res.end(reply.raw ?? JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: reply.content ?? '' }, finish_reason: 'stop' }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    seen,
    get maxInFlight() { return maxInFlight; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
