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
import { noopInputs } from '../engine/kinds/core.js';
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
import { createScoreFgvqa } from './fgvqa/score.js';
import { createBuildFgvqa } from './fgvqa/build.js';
import { createPredictFgvqa } from './fgvqa/predict.js';
import { createRenderTable } from './report/table.js';
import { createRenderPlot } from './report/plot.js';
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

  return {
    /** Local activity the interpreter runs before scheduling a cacheable stage. */
    async lookupCache(input: CacheLookupInput): Promise<CacheLookupResult> {
      const key = await computeStageKey(input);
      const { entry, stale } = await findServable(cache, store, key, here);
      if (!entry) return { key, ...(stale ? { stale } : {}) };
      return { key, hit: { outputs: entry.outputs, runId: entry.runId, stageId: entry.stageId, createdAt: entry.createdAt } };
    },
    runShell: cached(createShellActivity(home, logs)),
    readCatalog: cached(createReadCatalog({ store, home })),
    prepareImages: cached(createPrepareImages({ store, home })),
    embedImages: cached(createEmbedImages({ store, home })),
    decideByPolicy: cached(createDecideByPolicy({ store, home })),
    /** `core/review`: a policy's decisions are final (and cached) at once; people's are cached by closeReview. */
    openReview: attempt(async (input: StageActivityInput): Promise<OpenReviewResult> => {
      const opened = await openReview(input);
      if ('decided' in opened) await remember(input, opened.decided.outputs);
      return opened;
    }),
    closeReview: cached<CloseReviewInput>(review.closeReview),
    loadReviewIndex: review.loadReviewIndex,
    appendReviewAudit: review.appendReviewAudit,
    mergeDuplicates: cached(createMergeDuplicates({ store, home })),
    dedupeCandidates: cached(createDedupeCandidates({ store, home })),
    shortlistHardNegatives: cached(createShortlistHardNegatives({ store, home })),
    synthesizeVariants: cached(createSynthesizeVariants({ store, home })),
    assembleTwin: cached(createAssembleTwin({ store, home })),
    buildFgvqa: cached(createBuildFgvqa({ store, home })),
    predictFgvqa: cached(createPredictFgvqa({ store, home, logs })),
    scoreFgvqa: cached(createScoreFgvqa({ store, home })),
    renderTable: cached(createRenderTable({ store, home })),
    renderPlot: cached(createRenderPlot({ store, home })),
    noop: cached(async (input) => ({ outputs: (parseInputs(noopInputs, input).outputs ?? {}) as JsonObject, attempt: Context.current().info.attempt })),
  };
}

export type Activities = ReturnType<typeof createActivities>;
