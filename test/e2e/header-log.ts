import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the server behind the log received it. */
export interface SeenRequest {
  method: string;
  url: string;
  authorization?: string;
  cookie?: string;
}

/**
 * A plain HTTP relay in front of a review server that keeps what every request carried
 * (its address, Authorization and Cookie headers): what the server itself was sent. The
 * browser sees the relay's own origin, so two relays are two servers on one host.
 */
export async function headerLog(target: string): Promise<{ url: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const relay = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(req.headers.cookie ? { cookie: req.headers.cookie } : {}) });
    const out = http.request(new URL(req.url!, target), { method: req.method, headers: req.headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(relay.address() as AddressInfo).port}/`;
  return {
    url, seen,
    close: () => new Promise<void>((resolve) => { relay.close(() => resolve()); relay.closeAllConnections(); }),
  };
}
