import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { ArtifactRef } from '../../engine/types.js';
import { digestOf, type ArtifactStore } from '../artifact-store.js';
import type { StageActivityInput } from '../stage-io.js';
import { describeProblems, readJsonl, type JsonlProblem } from './jsonl.js';
import type { ManifestRow } from './manifest.js';
import { invalidInput } from '../failures.js';

/** Reading the instance manifest a data stage receives, with the errors a person can act on. */

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The local path of an artifact a stage was given as `field`, or a non-retryable failure
 * saying what is wrong and what to pass (`hint`) instead.
 */
export async function artifactFile(
  store: ArtifactStore, ref: ArtifactRef, input: StageActivityInput, field: string, hint = 'pass the output of the stage that makes it',
): Promise<string> {
  const where = `stage ${input.stageId} (${input.uses}): ${field}`;
  try {
    digestOf(ref);
  } catch (err) {
    throw invalidInput(`${where}: ${messageOf(err)}; ${hint}`);
  }
  try {
    return await store.file(ref);
  } catch (err) {
    // Missing or damaged in the store: say which input it was.
    if (err instanceof ApplicationFailure) throw ApplicationFailure.create({ type: err.type ?? 'ArtifactMissing', nonRetryable: true, message: `${where}: ${err.message}` });
    throw err;
  }
}

/** The local file of an input given either as a host path or as an artifact of an earlier stage. */
export async function pathOrArtifactFile(store: ArtifactStore, value: string | ArtifactRef, input: StageActivityInput, field: string): Promise<string> {
  if (typeof value !== 'string') return artifactFile(store, value, input, field);
  const file = path.resolve(value);
  if (await fs.access(file).then(() => true, () => false)) return file;
  throw invalidInput(`stage ${input.stageId} (${input.uses}): ${field}: ${file} does not exist or cannot be read`);
}

export function manifestFile(store: ArtifactStore, ref: ArtifactRef, input: StageActivityInput): Promise<string> {
  return artifactFile(store, ref, input, 'with.instances', 'pass the instances output of an earlier data stage');
}

/** A cheap first pass for the progress total; it also rejects a malformed manifest before any work. */
export async function countManifestImages(manifest: string, input: StageActivityInput): Promise<number> {
  const problems: JsonlProblem[] = [];
  let total = 0;
  for await (const { value } of readJsonl<Partial<ManifestRow>>(manifest, (p) => problems.push(p))) {
    total += Array.isArray(value?.images) ? value.images.length : 0;
  }
  if (problems.length === 0) return total;
  throw invalidManifest(problems, input);
}

/**
 * Every row of a manifest, checked: each needs an instance_id and an images list, and ids
 * are unique. Problems are collected and reported together, with line numbers.
 */
export async function readManifestRows(file: string, input: StageActivityInput): Promise<ManifestRow[]> {
  const problems: JsonlProblem[] = [];
  const rows: ManifestRow[] = [];
  const ids = new Set<string>();
  for await (const { value, line } of readJsonl<ManifestRow>(file, (p) => problems.push(p))) {
    if (typeof value?.instance_id !== 'string' || !Array.isArray(value.images)) {
      problems.push({ file, line, message: 'a manifest row needs instance_id and images[]' });
    } else if (ids.has(value.instance_id)) {
      problems.push({ file, line, message: `instance ${value.instance_id} appears twice; instance ids must be unique` });
    } else {
      ids.add(value.instance_id);
      rows.push(value);
    }
  }
  if (problems.length) throw invalidManifest(problems, input);
  return rows;
}

function invalidManifest(problems: JsonlProblem[], input: StageActivityInput): ApplicationFailure {
  return invalidInput(`stage ${input.stageId} (${input.uses}): the instances manifest has ${describeProblems(problems)}; fix the stage that wrote it`);
}
