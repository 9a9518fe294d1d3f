import path from 'node:path';
import { Context } from '@temporalio/activity';
import { describePolicy, reviewInputs, type ReviewInputs } from '../../engine/kinds/review.js';
import { parseDuration } from '../../engine/duration.js';
import type { ArtifactRef, JsonObject } from '../../engine/types.js';
import type { AuditRecord, ReviewConfig } from '../../workflows/review-messages.js';
import { idHash } from '../../workflows/review-ids.js';
import type { ArtifactStore } from '../artifact-store.js';
import { describeProblems, JsonlWriter, readJsonl, type JsonlProblem } from '../data/jsonl.js';
import { artifactFile } from '../data/manifest-input.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { StageActivityInput, StageActivityResult } from '../stage-io.js';
import { REVIEW_QUEUE_MEDIA_TYPE, type ReviewItem } from './items.js';
import { acceptedIds } from './policy.js';
import { writeReviewOutputs } from './outputs.js';
import { invalidInput } from '../failures.js';

/** A review people decide: the queue the review workflow holds. */
export interface OpenedReview {
  items: ArtifactRef;
  queue: ArtifactRef;
  total: number;
  config: ReviewConfig;
}

/** `decided` when a policy decided every item at once; `review` when people decide. */
export type OpenReviewResult = { decided: StageActivityResult } | { review: OpenedReview };

/**
 * `core/review`, first step: checks every item (ids unique, images named by digest),
 * then either decides them all by the stage's policy, or writes the queue (item ids in
 * order) and the review's settings for the review workflow.
 */
export function createOpenReview(deps: { store: ArtifactStore; home: HomeLayout }) {
  return async function openReview(input: StageActivityInput): Promise<OpenReviewResult> {
    const attempt = Context.current().info.attempt;
    const opts = parseInputs(reviewInputs, input);
    const file = await artifactFile(deps.store, opts.items, input, 'with.items');
    const items = await readReviewItems(file, input);
    const dir = deps.home.stageDir(input.runId, input.stageId);
    const mode = opts.mode ?? (opts.policy ? 'policy' : 'people');
    if (mode === 'policy') return { decided: { outputs: await decideByPolicy(deps.store, dir, opts, items), attempt } };
    const queueFile = await JsonlWriter.open(path.join(dir, 'queue.jsonl'));
    for (const item of items) await queueFile.write(item.id);
    await queueFile.close();
    const queue = await deps.store.putFile(queueFile.file, REVIEW_QUEUE_MEDIA_TYPE);
    return { review: { items: opts.items, queue: { ...queue, counts: { rows: items.length } }, total: items.length, config: reviewConfig(opts) } };
  };
}

export function reviewConfig(opts: ReviewInputs, now = Date.now()): ReviewConfig {
  return {
    choices: opts.choices ?? ['accept', 'reject'],
    quorum: opts.quorum,
    ...(opts.deadline ? { deadlineAt: new Date(now + parseDuration(opts.deadline)).toISOString() } : {}),
    onDeadline: opts.onDeadline,
    assignees: opts.assignees ?? [],
    ...(opts.title ? { title: opts.title } : {}),
    ...(opts.question ? { question: opts.question } : {}),
    leaseMinutes: opts.leaseMinutes,
  };
}

type Queued = Pick<ReviewItem, 'id' | 'group' | 'score'>;

/** Items as (id, group, score), refusing the artifact with every problem listed when any item is malformed. */
async function readReviewItems(file: string, input: StageActivityInput): Promise<Queued[]> {
  const problems: JsonlProblem[] = [];
  const items: Queued[] = [];
  const seen = new Map<number, string>();
  for await (const { value, line } of readJsonl<ReviewItem>(file, (p) => problems.push(p))) {
    const wrong = itemProblem(value, seen);
    if (wrong) problems.push({ file, line, message: wrong });
    else {
      seen.set(idHash(value.id), value.id);
      items.push({ id: value.id, ...(value.group !== undefined ? { group: value.group } : {}), ...(typeof value.score === 'number' ? { score: value.score } : {}) });
    }
  }
  if (problems.length) {
    throw invalidInput(`stage ${input.stageId} (core/review): with.items has ${describeProblems(problems)}; fix the stage that wrote the items`);
  }
  if (items.length === 0) {
    throw invalidInput(`stage ${input.stageId} (core/review): with.items holds no items; there is nothing to review`);
  }
  return items;
}

function itemProblem(v: ReviewItem, seen: Map<number, string>): string | undefined {
  if (typeof v?.id !== 'string' || !v.id || v.id.length > 500) return 'an item needs a string id (1-500 characters)';
  const clash = seen.get(idHash(v.id));
  if (clash === v.id) return `item id ${v.id} appears twice`;
  if (clash !== undefined) return `item ids ${clash} and ${v.id} share a hash; rename one`;
  if (!Array.isArray(v.images) || v.images.length === 0) return `item ${v.id} has no images`;
  if (v.images.some((img) => !/^[0-9a-f]{64}$/.test(String(img?.sha256)))) return `item ${v.id}: every image needs its sha256 (the store key it is served by)`;
  if (v.metadata !== undefined && (typeof v.metadata !== 'object' || v.metadata === null || Array.isArray(v.metadata))) return `item ${v.id}: metadata must be an object`;
  return undefined;
}

async function decideByPolicy(store: ArtifactStore, dir: string, opts: ReviewInputs, items: Queued[]): Promise<JsonObject> {
  const policy = opts.policy!;
  const accepted = acceptedIds(items, policy);
  const at = new Date().toISOString();
  const by = `policy:${policy.name}`;
  const note = describePolicy(policy);
  const records: AuditRecord[] = items.map((item, i) => ({ seq: i + 1, at, by, id: item.id, choice: accepted.has(item.id) ? 'accept' : 'reject', automatic: true, note }));
  const decisions = records.map((r) => ({ id: r.id, choice: r.choice!, by, at, automatic: true, note }));
  const counts = { items: items.length, people: 0, automatic: items.length, undecided: 0, accept: accepted.size, reject: items.length - accepted.size };
  return writeReviewOutputs(store, dir, { decisions, audit: records, outcome: 'policy', policy: note, counts, reviewers: {} });
}
