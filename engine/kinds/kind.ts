import type { z } from 'zod';
import type { StageHandler } from '../types.js';

/**
 * A stage kind: what `uses:` names, defined once. The engine validates `with` against
 * `with` before anything is submitted; the worker runs the implementation registered
 * under the same `uses` name (activities/kinds.ts, checked by the type checker), validates
 * the resolved inputs again, and checks the outputs against `outputs` when the stage ends.
 */
export interface KindDefinition<U extends string = string, W extends z.ZodObject = z.ZodObject, O extends z.ZodType = z.ZodType, H extends StageHandler = StageHandler> {
  /** The `uses:` name, `family/name`; also the Temporal activity type of its stages. */
  uses: U;
  /** Part of every cache key: bump it when the kind's outputs change for the same inputs. */
  version: string;
  /** One line for `twinflow kinds`, the JSON Schema and the README's kind tables. */
  description: string;
  with: W;
  outputs: O;
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
  handler: H;
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

/** Any kind, its types erased: what the engine's compiler and the CLI handle. */
export type StageKind = KindDefinition;

/**
 * Defines a kind, keeping its `uses` name and its input and output schemas in the type,
 * so that the worker's table of implementations (activities/kinds.ts) must hold one for
 * it, of the right shape.
 */
export function defineKind<const U extends string, W extends z.ZodObject, O extends z.ZodType, const H extends StageHandler>(
  kind: KindDefinition<U, W, O, H>,
): KindDefinition<U, W, O, H> {
  return kind;
}

/** A family of kinds under one heading of the README's kind tables. */
export interface KindFamily<K extends readonly StageKind[] = readonly StageKind[]> {
  /** Heading of its table in the README, and its marker there (`<!-- kinds:ID -->`). */
  id: string;
  title: string;
  kinds: K;
}
