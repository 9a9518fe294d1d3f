import { computeStageKey } from '../../activities/cache-keys.js';
import { resolveInputs, resolveKnown, type ExprContext } from '../../engine/expressions.js';
import type { CompiledPipeline, CompiledStage, JsonObject } from '../../engine/types.js';
import { waitsForPeople } from '../../engine/people.js';
import type { ArtifactStore } from '../../activities/artifact-store.js';
import type { StageCache } from '../../activities/cache.js';
import { openStores } from '../../activities/store/config.js';
import { findServable, hostId } from '../../activities/cache-check.js';
import { homeLayout } from '../../activities/home.js';
import { table } from '../render.js';

export type PlanVerdict = 'cached' | 'will run' | 'waits for people' | 'runs if condition holds';

export interface PlannedStage {
  id: string;
  uses: string;
  queue: string;
  needs: string[];
  /** Inputs with what is known resolved; expressions on outputs not known yet stay as written. */
  inputs: JsonObject;
  /** Values of a shell field's expressions, when all are known (see core/shell). */
  shellEnv?: Record<string, string>;
  verdict: PlanVerdict;
  cacheKey?: string;
}

/**
 * What `run` would do, stage by stage. A cacheable stage whose inputs are all known
 * (params, or outputs of stages that are themselves cache hits) is looked up in the
 * cache under `$TWINFLOW_HOME`, the same store the workers use.
 */
export async function planPipeline(
  p: CompiledPipeline,
  { cache, artifacts: store }: { cache: StageCache; artifacts: ArtifactStore } = openStores(),
): Promise<PlannedStage[]> {
  const known: ExprContext['stages'] = {};
  const planned: PlannedStage[] = [];
  for (const id of p.order) {
    const s = p.stages[id]!;
    const ctx: ExprContext = { params: p.params, matrix: s.matrix, stages: known };
    const resolved = tryResolve(s, ctx);
    let verdict: PlanVerdict = waitsForPeople(s, p.params) ? 'waits for people' : 'will run';
    let cacheKey: string | undefined;
    if (resolved && s.cache && s.handler !== 'approval') {
      cacheKey = await computeStageKey({ uses: s.uses, kindVersion: s.kindVersion, inputs: resolved.with, shellEnv: resolved.shellEnv });
      const { entry: hit } = await findServable(cache, store, cacheKey, hostId(homeLayout()));
      if (hit) {
        verdict = 'cached';
        if (!s.matrix) known[s.key] = { outputs: hit.outputs };
      }
    }
    if (s.if !== undefined && verdict !== 'cached') verdict = 'runs if condition holds';
    const inputs = resolved?.with ?? resolveKnown(s.with, ctx);
    const shellEnv = resolved && Object.keys(resolved.shellEnv).length ? { shellEnv: resolved.shellEnv } : {};
    planned.push({ id, uses: s.uses, queue: s.queue, needs: s.needs, inputs, ...shellEnv, verdict, cacheKey });
  }
  return planned;
}

function tryResolve(s: CompiledStage, ctx: ExprContext) {
  try {
    return resolveInputs(s.with, ctx, s.shellFields);
  } catch {
    return undefined;
  }
}

export async function planCommand(p: CompiledPipeline, opts: { json?: boolean }): Promise<void> {
  const planned = await planPipeline(p);
  if (opts.json) {
    console.log(JSON.stringify({ pipeline: p.name, params: p.params, stages: planned }, null, 2));
    return;
  }
  console.log(`pipeline ${p.name}: ${planned.length} stages in order (params ${JSON.stringify(p.params)})\n`);
  const rows = planned.map((s, i) => [String(i + 1), s.id, s.uses, s.queue, s.needs.join(',') || '-', s.verdict]);
  for (const line of table(['#', 'STAGE', 'KIND', 'QUEUE', 'NEEDS', 'PLAN'], rows)) console.log(line);
  console.log('');
  for (const s of planned) console.log(`${s.id}: ${JSON.stringify(s.inputs)}`);
}
