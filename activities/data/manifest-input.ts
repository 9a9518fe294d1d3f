import fs from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import type { ArtifactRef } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import type { StageActivityInput } from '../stage-io.js';
import { readJsonl, type JsonlProblem } from './jsonl.js';
import type { ManifestRow } from './manifest.js';

/** Reading the instance manifest a data stage receives, with the errors a person can act on. */

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function manifestFile(store: ArtifactStore, ref: ArtifactRef, input: StageActivityInput): Promise<string> {
  let file: string;
  try {
    file = store.resolve(ref);
  } catch (err) {
    throw ApplicationFailure.create({
      type: 'InvalidStageInput',
      nonRetryable: true,
      message: `stage ${input.stageId} (${input.uses}): with.instances: ${messageOf(err)}; pass the instances output of an earlier data stage`,
    });
  }
  if (await fs.access(file).then(() => true, () => false)) return file;
  throw ApplicationFailure.create({
    type: 'ArtifactMissing',
    nonRetryable: true,
    message:
      `stage ${input.stageId} (${input.uses}): the instances manifest ${ref.uri} is not in the artifact store at ${store.dir}. ` +
      'Run the stage that produced it again (with cache: false if it came from the cache), or point with.instances at an artifact this worker can read.',
  });
}

/** A cheap first pass for the progress total; it also rejects a malformed manifest before any work. */
export async function countManifestImages(manifest: string, input: StageActivityInput): Promise<number> {
  const problems: JsonlProblem[] = [];
  let total = 0;
  for await (const { value } of readJsonl<Partial<ManifestRow>>(manifest, (p) => problems.push(p))) {
    total += Array.isArray(value?.images) ? value.images.length : 0;
  }
  if (problems.length === 0) return total;
  const where = problems.slice(0, 5).map((p) => `line ${p.line}: ${p.message}`).join('; ');
  throw ApplicationFailure.create({
    type: 'InvalidManifest',
    nonRetryable: true,
    message: `stage ${input.stageId} (${input.uses}): the instances manifest has ${problems.length} malformed line(s) (${where}); fix the stage that wrote it`,
  });
}
