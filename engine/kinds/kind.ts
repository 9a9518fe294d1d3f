import type { z } from 'zod';
import type { StageHandler } from '../types.js';

/**
 * A stage kind: what `uses:` names. The engine validates `with` against `with` before
 * anything is submitted, and the activity validates resolved inputs again at run time.
 */
export interface StageKind {
  /** The `uses:` name, `family/name`. */
  uses: string;
  /** Part of every cache key: bump it when the kind's outputs change for the same inputs. */
  version: string;
  /** One line for `twinflow kinds` and the JSON Schema. */
  description: string;
  with: z.ZodObject;
  outputs: z.ZodType;
  /** Task queue used when the stage names none. @default 'cpu' */
  defaultQueue: string;
  /**
   * A queue chosen from the stage's own `with` (as written, before expressions resolve),
   * for kinds whose inputs decide the hardware. It beats `defaults.queue` and
   * `defaultQueue` but never the stage's own `queue:`. Undefined: no preference.
   */
  queueFor?: (inputs: Record<string, unknown>) => string | undefined;
  /** Whether a stage of this kind is cached when it does not say `cache:`. */
  cacheByDefault: boolean;
  handler: StageHandler;
  /** Activity type name, for `handler: 'activity'`. */
  activity?: string;
  /** `with` fields whose expressions become shell variables (see core/shell). */
  shellFields?: string[];
  /**
   * Host files and folders the stage reads, from its inputs. Their content (files) or
   * listing with sizes and times (folders) joins the cache key, so an edited catalog is
   * never served from the cache.
   */
  readsPaths?: (inputs: Record<string, unknown>) => string[];
  /**
   * Outputs that name folders the stage writes (a dataset). A cache hit is served only if
   * every file in them is still as the stage left it; other host paths in outputs are
   * checked for existence (and files for size and time).
   */
  outputFolders?: string[];
  /** Default `timeout` for this kind, in ms. */
  defaultTimeoutMs?: number;
}
