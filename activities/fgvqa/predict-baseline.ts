import { fingerprint } from '../cache-keys.js';
import { pathOrArtifactFile } from '../data/manifest-input.js';
import { answerFromEmbeddings, calibrateOnPairs, ImageEncoder } from './baseline.js';
import type { BackendResult, BackendRun, PredictDeps } from './predict.js';
import { invalidInput } from '../failures.js';

/**
 * Backend embedding-baseline: the non-VLM baseline in the worker, answering like
 * `twinflow serve-baseline` does (cosine of the image embeddings against a threshold).
 * The threshold is given, or calibrated on labelled pairs that must not be the queries
 * being answered: choosing it on their labels would score the baseline on its own
 * training data.
 */
export async function answerWithBaseline(deps: PredictDeps, run: BackendRun): Promise<BackendResult> {
  const { input } = run;
  const b = run.opts.baseline!;
  const where = `stage ${input.stageId} (fgvqa/predict, embedding-baseline)`;
  const refuse = (message: string) => invalidInput(`${where}: ${message}`);
  const calibrationFile = b.calibrate === undefined ? undefined : await pathOrArtifactFile(deps.store, b.calibrate, input, 'with.baseline.calibrate');
  if (calibrationFile && await fingerprint(calibrationFile) === await fingerprint(run.queriesFile)) {
    throw refuse('with.baseline.calibrate holds the very queries being predicted; calibrating on them would use their labels. ' +
      'Calibrate on held-out labelled pairs (e.g. fgvqa/build with another seed or source), or give baseline.threshold');
  }
  let encoder: ImageEncoder;
  try {
    encoder = await ImageEncoder.open(b.model);
  } catch (err) {
    throw refuse(`cannot load the image encoder ${b.model}: ${(err as Error).message}; run \`npm run setup\` (it converts the default encoder) or set baseline.model`);
  }
  try {
    let threshold = b.threshold!;
    let calibration: { pairs: number; accuracy: number } | undefined;
    if (calibrationFile) {
      const calibrated = await calibrateOnPairs(encoder, calibrationFile).catch((err: Error) => {
        throw refuse(`cannot calibrate on with.baseline.calibrate (${calibrationFile}): ${err.message}`);
      });
      if (!calibrated) throw refuse(`with.baseline.calibrate (${calibrationFile}) holds no labelled pair queries (type "pair", two images, answer yes/no) to calibrate on`);
      threshold = calibrated.threshold;
      calibration = { pairs: calibrated.pairs, accuracy: calibrated.accuracy };
    }
    let done = 0;
    for (const q of run.todo) {
      if (run.signal.aborted) break;
      try {
        run.keep(q.id, answerFromEmbeddings(await encoder.embed(q.images), threshold));
      } catch (err) {
        run.fail(q.id, `cannot embed its images: ${(err as Error).message}`);
      }
      run.progress(++done);
    }
    return { counts: {}, outputs: { baseline: { threshold, ...(calibration ? { calibration } : {}) } } };
  } finally {
    await encoder.close();
  }
}
