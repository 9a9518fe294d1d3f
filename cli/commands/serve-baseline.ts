import { calibrateOnPairs, ImageEncoder } from '../../activities/fgvqa/baseline.js';
import { startBaselineServer } from '../../activities/fgvqa/baseline-server.js';
import { CliError } from '../errors.js';

export interface ServeBaselineOptions {
  host: string;
  port: number;
  model: string;
  threshold?: number;
  calibrate?: string;
}

/** Labelled pair queries (fgvqa/build's JSONL) -> the cosine threshold that answers most of them right. */
export async function calibrate(encoder: ImageEncoder, file: string): Promise<{ threshold: number; accuracy: number; pairs: number }> {
  const calibrated = await calibrateOnPairs(encoder, file);
  if (!calibrated) throw new CliError(`${file} holds no labelled pair queries to calibrate on`, 'pass fgvqa/build queries (type "pair", answer yes/no)', 2);
  return calibrated;
}

/** `twinflow serve-baseline`: the embedding baseline as an OpenAI-compatible endpoint, until Ctrl-C. */
export async function serveBaselineCommand(opts: ServeBaselineOptions): Promise<void> {
  if ((opts.threshold === undefined) === (opts.calibrate === undefined)) throw new CliError('give exactly one of --threshold and --calibrate', undefined, 2);
  const encoder = await ImageEncoder.open(opts.model).catch((err: Error) => {
    throw new CliError(`cannot load the image encoder ${opts.model}: ${err.message}`, 'run `npm run setup` (it converts the default encoder), or pass --model');
  });
  let threshold = opts.threshold!;
  if (opts.calibrate) {
    const c = await calibrate(encoder, opts.calibrate);
    threshold = c.threshold;
    console.log(`calibrated on ${c.pairs} labelled pairs: threshold ${c.threshold} answers ${(c.accuracy * 100).toFixed(1)}% of them right`);
  }
  const server = await startBaselineServer({ encoder, threshold, host: opts.host, port: opts.port });
  console.log(`embedding baseline (model embedding-baseline, threshold ${threshold}) at ${server.url}  (POST /chat/completions)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await encoder.close();
}
