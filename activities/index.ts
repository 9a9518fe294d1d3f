import { computeStageKey } from './cache-keys.js';
import { findServable, hostId, recordHostPaths } from './cache-check.js';
import { getKind } from '../engine/kinds/registry.js';
import type { JsonObject } from '../engine/types.js';
import type { CacheEntry } from './cache.js';
import { openStores, type Stores } from './store/config.js';
import { stageAttempt } from './stage-attempt.js';
import type { GpuPool } from './gpu-pool.js';
import { homeLayout, type HomeLayout } from './home.js';
import { Context } from '@temporalio/activity';
import { noopKind } from '../engine/kinds/core.js';
import type { StageKind } from '../engine/kinds/kind.js';
import type { Implementation, Implementations } from './kind-implementation.js';
import { invalidOutput } from './failures.js';
import { parseInputs } from './inputs.js';
import { createShellActivity } from './shell.js';
import { createReadCatalog } from './twin/source.js';
import { createPrepareImages } from './images/prepare.js';
import { createEmbedImages } from './embed/embed-images.js';
import { createDecideByPolicy } from './review/decide.js';
import { createOpenReview, type OpenReviewResult } from './review/open.js';
import { createReviewActivities, type CloseReviewInput } from './review/close.js';
import { createMergeDuplicates } from './twin/merge.js';
import { createAssembleTwin } from './twin/assemble.js';
import { createDedupeCandidates } from './twin/dedupe.js';
import { createShortlistHardNegatives } from './twin/shortlist.js';
import { createSynthesizeVariants } from './twin/synthesize.js';
import { createDreamboothGenerate } from './dreambooth/generate.js';
import { createScoreFgvqa } from './fgvqa/score.js';
import { createBuildFgvqa } from './fgvqa/build.js';
import { createPredictFgvqa } from './fgvqa/predict.js';
import { createRenderTable } from './report/table.js';
import { createRenderPlot } from './report/plot.js';
import { createGrpoTraining } from './train/verl-grpo.js';
import { createTeacherAnswers } from './train/teacher.js';
import { createSftTraining } from './train/llamafactory-sft.js';
import { createLmmsEvalRun } from './evaluate/lmms-eval-run.js';
import { createProbeEncoder } from './probe/probe-encoder.js';
import { within } from './host-files.js';
import type {
  CacheLookupInput,
  CacheLookupResult,
  StageActivityInput,
  StageActivityResult,
} from './stage-io.js';

export interface ActivityDeps {
  /** `$TWINFLOW_HOME` layout: logs, cache, stage folders. @default homeLayout() */
  home?: HomeLayout;
  /** Artifacts, the stage cache and logs. @default openStores(home) (TWINFLOW_STORE) */
  stores?: Stores;
  /** The GPUs this worker lends to stages (`worker.ts --gpus N`). @default none: GPUs are not managed */
  gpus?: GpuPool;
}

export type StageActivity = (input: StageActivityInput) => Promise<StageActivityResult>;

/**
 * Builds every activity once, with its dependencies. `worker.ts` calls this; tests pass
 * their own home folder. Stage activities share one signature so the interpreter can
 * call any kind by the activity name its registry entry gives.
 */
export function createActivities(deps: ActivityDeps = {}) {
  const home = deps.home ?? homeLayout();
  const stores = deps.stores ?? openStores(home);
  const { cache, artifacts: store, logs } = stores;
  const here = hostId(home);

  const remember = async (input: StageActivityInput, outputs: JsonObject) => {
    if (!input.cacheKey) return;
    const folders = new Set((getKind(input.uses)?.outputFolders ?? []).map((name) => outputs[name]).filter((v) => typeof v === 'string'));
    const listed = (p: string) => within(home.root, p) || folders.has(p);
    const entry: CacheEntry = {
      key: input.cacheKey,
      uses: input.uses,
      kindVersion: input.kindVersion,
      outputs,
      createdAt: new Date().toISOString(),
      runId: input.runId,
      stageId: input.stageId,
      hostPaths: await recordHostPaths(outputs, listed),
      host: here,
    };
    // First writer wins (two hosts finishing one stage at once); a stale entry is replaced.
    if (await cache.putIfAbsent(entry)) return;
    if ((await findServable(cache, store, entry.key, here)).entry) return;
    await cache.put(entry);
  };
  const attempt = stageAttempt(home, deps.gpus);
  /** Writes the cache only after success: a failed stage never leaves an entry. */
  const cached = <I extends StageActivityInput>(run: (input: I) => Promise<StageActivityResult>) => attempt(async (input: I) => {
    const result = await run(input);
    await remember(input, result.outputs);
    return result;
  });
  const openReview = createOpenReview({ store, home });
  const review = createReviewActivities({ store, home });

  /** The code behind every activity kind, by `uses` name; the type checker refuses a kind left out. */
  const implementations = {
    'core/shell': createShellActivity(home, logs),
    'core/noop': async (input) => ({ outputs: parseInputs(noopKind.with, input).outputs ?? {}, attempt: Context.current().info.attempt }),
    'core/decide': createDecideByPolicy({ store, home }),
    'twin/source': createReadCatalog({ store, home }),
    'twin/merge': createMergeDuplicates({ store, home }),
    'images/prepare': createPrepareImages({ store, home }),
    'embed/images': createEmbedImages({ store, home }),
    'twin/dedupe': createDedupeCandidates({ store, home }),
    'twin/shortlist': createShortlistHardNegatives({ store, home }),
    'twin/synthesize-variants': createSynthesizeVariants({ store, home }),
    'dreambooth/generate': createDreamboothGenerate({ store, home, logs }),
    'twin/assemble': createAssembleTwin({ store, home }),
    'fgvqa/build': createBuildFgvqa({ store, home }),
    'fgvqa/predict': createPredictFgvqa({ store, home, logs }),
    'fgvqa/score': createScoreFgvqa({ store, home }),
    'report/table': createRenderTable({ store, home }),
    'report/plot': createRenderPlot({ store, home }),
    'verl/grpo': createGrpoTraining({ store, home, logs }),
    'teacher/answer': createTeacherAnswers({ store, home }),
    'llamafactory/sft': createSftTraining({ store, home, logs }),
    'lmms-eval/run': createLmmsEvalRun({ store, home, logs }),
    'probe/encoder': createProbeEncoder({ store, home, logs }),
  } satisfies Implementations;

  const stages = {} as Record<keyof typeof implementations, StageActivity>;
  for (const [uses, run] of Object.entries(implementations) as [keyof typeof implementations, Implementation<StageKind>][]) {
    stages[uses] = cached(checkedOutputs(run));
  }
  /** `core/review`: a policy's decisions are final (and cached) at once; people's are cached by closeReview. */
  const openReviewStage = attempt(async (input: StageActivityInput): Promise<OpenReviewResult> => {
    const opened = await openReview(input);
    if ('decided' in opened) await remember(input, checkOutputs(input, opened.decided.outputs));
    return opened;
  });
  const closeReview = cached<CloseReviewInput>(async (input) => {
    const closed = await review.closeReview(input);
    return { ...closed, outputs: checkOutputs(input, closed.outputs) };
  });

  return {
    /** Local activity the interpreter runs before scheduling a cacheable stage. */
    async lookupCache(input: CacheLookupInput): Promise<CacheLookupResult> {
      const key = await computeStageKey(input);
      const { entry, stale } = await findServable(cache, store, key, here);
      if (!entry) return { key, ...(stale ? { stale } : {}) };
      return { key, hit: { outputs: entry.outputs, runId: entry.runId, stageId: entry.stageId, createdAt: entry.createdAt } };
    },
    ...stages,
    'core/review': openReviewStage,
    closeReview,
    loadReviewIndex: review.loadReviewIndex,
    appendReviewAudit: review.appendReviewAudit,
    ...legacyNames(stages, openReviewStage),
  };
}

/**
 * Activity names of runs compiled before activities were named by their kind's `uses`
 * (twinflow 0.1): a run submitted then carries them in its compiled spec, so workers keep
 * them until no such run is left.
 */
const LEGACY_NAMES = {
  runShell: 'core/shell', noop: 'core/noop', decideByPolicy: 'core/decide', readCatalog: 'twin/source',
  mergeDuplicates: 'twin/merge', prepareImages: 'images/prepare', embedImages: 'embed/images',
  dedupeCandidates: 'twin/dedupe', shortlistHardNegatives: 'twin/shortlist', synthesizeVariants: 'twin/synthesize-variants',
  assembleTwin: 'twin/assemble', buildFgvqa: 'fgvqa/build', predictFgvqa: 'fgvqa/predict', scoreFgvqa: 'fgvqa/score',
  renderTable: 'report/table', renderPlot: 'report/plot',
} as const;

function legacyNames<R>(stages: Record<(typeof LEGACY_NAMES)[keyof typeof LEGACY_NAMES], StageActivity>, openReview: R) {
  const named = { openReview } as Record<keyof typeof LEGACY_NAMES, StageActivity> & { openReview: R };
  for (const [old, uses] of Object.entries(LEGACY_NAMES) as [keyof typeof LEGACY_NAMES, keyof typeof stages][]) named[old] = stages[uses];
  return named;
}

/** Outputs that do not match the kind's declared schema fail the stage (a bug in the kind, not retried). */
export function checkOutputs<O>(input: StageActivityInput, outputs: O): JsonObject {
  const kind = getKind(input.uses);
  const parsed = kind?.outputs.safeParse(outputs);
  if (parsed && !parsed.success) {
    const problems = parsed.error.issues.slice(0, 10).map((issue) => `outputs.${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    throw invalidOutput(
      `stage ${input.stageId} (${input.uses}) ended with outputs that do not match what ${input.uses} declares: ${problems}. ` +
      'This is a bug in the kind: report it with the stage log.',
    );
  }
  return outputs as JsonObject;
}

function checkedOutputs<K extends StageKind>(run: Implementation<K>): StageActivity {
  return async (input) => {
    const result = await run(input);
    return { ...result, outputs: checkOutputs(input, result.outputs) };
  };
}

export type Activities = ReturnType<typeof createActivities>;
