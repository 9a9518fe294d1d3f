import path from 'node:path';
import { Context } from '@temporalio/activity';
import { decideInputs, describePolicy } from '../../engine/kinds/review.js';
import type { ArtifactStore } from '../artifact-store.js';
import { JsonlWriter } from '../data/jsonl.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { StageActivityInput } from '../stage-io.js';
import { DECISIONS_MEDIA_TYPE, type Decision } from './items.js';
import { readItems } from './read-items.js';
import { acceptedIds } from './policy.js';
import { invalidInput } from '../failures.js';
import { decideKind } from '../../engine/kinds/review.js';
import type { Implementation } from '../kind-implementation.js';

/**
 * `core/decide`: every item decided by the stage's policy, marked automatic. Items are
 * held as (id, group, score) only, so a 100K-item shortlist stays small in memory.
 */
export function createDecideByPolicy(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof decideKind> {
  return async function decideByPolicy(input: StageActivityInput) {
    const ctx = Context.current();
    const opts = parseInputs(decideInputs, input);
    const items = await readItems(deps.store, opts.items, input, 'with.items');
    if (items.length !== new Set(items.map((i) => i.id)).size) {
      throw invalidInput(`stage ${input.stageId} (core/decide): with.items holds repeated item ids; fix the stage that wrote the items`);
    }
    const accepted = acceptedIds(items, opts.policy);
    const policy = describePolicy(opts.policy);
    const at = new Date().toISOString();
    const out = await JsonlWriter.open(path.join(deps.home.stageDir(input.runId, input.stageId), 'decisions.jsonl'));
    for (const item of items) {
      const decision: Decision = {
        id: item.id,
        choice: accepted.has(item.id) ? 'accept' : 'reject',
        by: `policy:${opts.policy.name}`,
        at,
        automatic: true,
        note: policy,
      };
      await out.write(decision);
    }
    await out.close();
    const decisions = await deps.store.putFile(out.file, DECISIONS_MEDIA_TYPE);
    decisions.counts = { rows: items.length };
    const counts = { items: items.length, accepted: accepted.size, rejected: items.length - accepted.size };
    return { outputs: { decisions, policy, counts }, attempt: ctx.info.attempt };
  };
}
