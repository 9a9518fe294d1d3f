import { ApplicationFailure } from '@temporalio/activity';
import type { ArtifactRef } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { describeProblems, readJsonl, type JsonlProblem } from '../data/jsonl.js';
import { artifactFile } from '../data/manifest-input.js';
import type { StageActivityInput } from '../stage-io.js';
import type { Decision, ReviewItem } from './items.js';

/** Reading review items and decisions a stage receives, with errors a person can act on. */

function fail(input: StageActivityInput, type: string, message: string): never {
  throw ApplicationFailure.create({ type, nonRetryable: true, message: `stage ${input.stageId} (${input.uses}): ${message}` });
}

async function readAll<T>(file: string, input: StageActivityInput, field: string, check: (v: T) => string | undefined): Promise<T[]> {
  const problems: JsonlProblem[] = [];
  const rows: T[] = [];
  for await (const { value, line } of readJsonl<T>(file, (p) => problems.push(p))) {
    const wrong = check(value);
    if (wrong) problems.push({ file, line, message: wrong });
    else rows.push(value);
  }
  if (problems.length) fail(input, 'InvalidStageInput', `${field} has ${describeProblems(problems)}`);
  return rows;
}

/** Items as (id, group, score): what policies and consumers need, without images and metadata. */
export async function readItems(store: ArtifactStore, ref: ArtifactRef, input: StageActivityInput, field: string): Promise<Array<Pick<ReviewItem, 'id' | 'group' | 'score'>>> {
  const file = await artifactFile(store, ref, input, field);
  const items = await readAll<ReviewItem>(file, input, field, (v) => (typeof v?.id === 'string' && v.id ? undefined : 'an item needs a string id'));
  return items.map(({ id, group, score }) => ({ id, ...(group !== undefined ? { group } : {}), ...(typeof score === 'number' ? { score } : {}) }));
}

/** Full items, for stages that need their metadata (e.g. the instances a candidate pair names). */
export async function readFullItems(store: ArtifactStore, ref: ArtifactRef, input: StageActivityInput, field: string): Promise<ReviewItem[]> {
  const file = await artifactFile(store, ref, input, field);
  return readAll<ReviewItem>(file, input, field, (v) => (typeof v?.id === 'string' && v.id ? undefined : 'an item needs a string id'));
}

/** Decisions by item id; a later decision for the same item replaces an earlier one. */
export async function readDecisions(store: ArtifactStore, ref: ArtifactRef, input: StageActivityInput, field: string): Promise<Map<string, Decision>> {
  const file = await artifactFile(store, ref, input, field);
  const rows = await readAll<Decision>(file, input, field, (v) =>
    typeof v?.id === 'string' && typeof v.choice === 'string' ? undefined : 'a decision needs a string id and choice');
  return new Map(rows.map((d) => [d.id, d]));
}
