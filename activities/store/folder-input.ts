import fs from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactRef } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { invalidInput } from '../failures.js';
import { NotAFolderArtifact, pullTree } from './tree.js';

/**
 * A folder input on the host that runs the stage: a host path as given (it must exist), or
 * a folder artifact (a reference, or its `artifact:sha256:...` URI as `twinflow status`
 * prints it) pulled once into the stage folder (`NAME-<digest>`; a pull is whole or absent,
 * so one found there is complete and a retry reuses it).
 */
export async function folderOnThisHost(store: ArtifactStore, given: string | ArtifactRef, stageDir: string, name: string, where: string): Promise<string> {
  const uri = typeof given === 'string' ? /^artifact:sha256:([0-9a-f]{64})$/.exec(given) : null;
  const value: string | Pick<ArtifactRef, 'uri' | 'sha256'> = uri ? { uri: given as string, sha256: uri[1]! } : given;
  if (typeof value === 'string') {
    const dir = path.resolve(value);
    const stat = await fs.stat(dir).catch(() => undefined);
    if (!stat?.isDirectory()) throw invalidInput(`${where}: with.${name}: ${dir} is not a folder on this host; pass the folder artifact (e.g. the datasetTree output) so it is pulled here`);
    return dir;
  }
  const dir = path.join(stageDir, `${name}-${value.sha256.slice(0, 16)}`);
  if (await fs.stat(dir).then(() => true, () => false)) return dir;
  try {
    await pullTree(store, value, dir);
  } catch (err) {
    if (err instanceof NotAFolderArtifact) throw invalidInput(`${where}: with.${name}: ${(err as Error).message}`);
    throw err;
  }
  return dir;
}

/** verl's `latest_checkpointed_iteration.txt` under a checkpoint folder: the step of its newest whole checkpoint. */
export async function latestCheckpoint(checkpoints: string): Promise<number | undefined> {
  const text = await fs.readFile(path.join(checkpoints, 'latest_checkpointed_iteration.txt'), 'utf8').catch(() => undefined);
  const step = text === undefined ? NaN : Number(text.trim());
  return Number.isInteger(step) && step >= 0 ? step : undefined;
}

export const stepFolder = (checkpoints: string, step: number) => path.join(checkpoints, `global_step_${step}`);
