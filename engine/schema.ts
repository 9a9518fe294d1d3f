/**
 * The pipeline file format as zod schemas: the single definition behind validation
 * (load.ts) and the JSON Schema editors use for completion and hover help.
 */
import { z } from 'zod';
import { kinds } from './kinds/registry.js';
import { DURATION_HINT, DURATION_PATTERN, parseDuration } from './duration.js';

/** Pipeline names: they become Temporal search attribute values and file names. */
export const PIPELINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Stage ids (YAML keys under `stages`): lower case, so ids read the same everywhere. */
export const STAGE_ID = /^[a-z0-9][a-z0-9_-]*$/;
/** Parameter and matrix names, as read by `params.NAME` and `matrix.NAME`. */
export const VALUE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

const json = z.json().meta({ id: 'json', description: 'Any JSON value.' });

function duration(description: string) {
  return z
    .string({ error: 'expected a duration such as 90s, 10m or 1h30m' })
    .regex(new RegExp(DURATION_PATTERN), { error: `expected a duration; ${DURATION_HINT}`, abort: true })
    .superRefine((text, ctx) => {
      try {
        parseDuration(text);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .describe(description);
}

/** `retry:` of a stage or of `defaults`. */
export const retrySchema = z
  .strictObject({
    attempts: z.int().min(1).max(1000).optional().describe('Most attempts in total; 1 means no retry. @default 1'),
    backoff: duration('Delay before the second attempt, doubled after each failure. @default 10s').optional(),
    maxBackoff: duration('Upper bound of the doubled delay. @default 10m').optional(),
  })
  .describe('What to do when the stage fails: try again, up to `attempts` in all.');

const queue = z.string().min(1).describe('Task queue the stage runs on, e.g. cpu or gpu. @default the kind\'s queue (cpu for core kinds)');
const timeout = duration('Longest a single attempt may run, e.g. 30m or 48h. @default the kind\'s timeout, else 1h');
const heartbeat = duration(
  'How long a worker may be silent before its stage moves to another worker. @default 30s',
);

/** `resources:` of a stage. */
export const resourcesSchema = z
  .strictObject({
    gpus: z
      .int({ error: 'expected a whole number of GPUs, e.g. 2' })
      .min(1, { error: 'a stage asks for at least 1 GPU; leave gpus out for none' })
      .max(1024)
      .optional()
      .describe('GPUs the stage needs, each a device of its own; its commands see them as CUDA_VISIBLE_DEVICES. Reserved by workers started with --gpus N. @default 0'),
  })
  .describe('What the stage needs from the host that runs it.');

const scalar = z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or true/false' });

/** One entry under `stages:`. */
export const stageSchema = z
  .strictObject({
    uses: z.string({ error: 'expected the name of a stage kind, e.g. core/shell' }).describe('The stage kind to run, e.g. core/shell.'),
    description: z.string().optional().describe('What this stage is for, shown in plans and status.'),
    needs: z
      .union([z.string(), z.array(z.string())], { error: 'expected a stage id or a list of stage ids' })
      .optional()
      .describe('Stages that must succeed first. Stages whose outputs are read in `with` or `if` are added on their own.'),
    with: z.record(z.string(), json).optional().describe('Inputs of the stage kind; strings may hold ${{ }} expressions.'),
    queue: queue.optional(),
    timeout: timeout.optional(),
    heartbeat: heartbeat.optional(),
    retry: retrySchema.optional(),
    cache: z.boolean().optional().describe('Reuse the outputs of an earlier run with the same inputs. @default the kind\'s choice'),
    resources: resourcesSchema.optional(),
    if: z
      .union([z.string(), z.boolean()], { error: 'expected a condition such as ${{ params.deploy }}' })
      .optional()
      .describe('Run the stage only when this condition holds, e.g. ${{ params.mode == \'full\' }}.'),
    matrix: z
      .record(z.string().regex(VALUE_NAME, { error: 'matrix names are letters, digits, _ and -' }), z.array(scalar).min(1, { error: 'a matrix entry needs at least one value' }))
      .optional()
      .describe('Run one copy of the stage per combination of these values, read as ${{ matrix.NAME }}.'),
  })
  .describe('One stage: a stage kind, its inputs, and when and where it runs.');

/** `defaults:`, applied to every stage that does not set its own. */
export const defaultsSchema = z
  .strictObject({ queue: queue.optional(), timeout: timeout.optional(), heartbeat: heartbeat.optional(), retry: retrySchema.optional() })
  .describe('Settings every stage gets unless it sets its own.');

/** A whole pipeline file. Strict objects throughout, so a misspelled field is an error, not ignored. */
export const pipelineSchema = z
  .strictObject({
    name: z
      .string({ error: 'expected a pipeline name' })
      .regex(PIPELINE_NAME, { error: 'a pipeline name starts with a letter or digit and has only letters, digits, ., _ and -' })
      .max(100)
      .describe('Name of the pipeline, shown in run lists and the Temporal Web UI.'),
    description: z.string().optional().describe('What the pipeline does.'),
    params: z
      .record(z.string().regex(VALUE_NAME, { error: 'parameter names are letters, digits, _ and -, not starting with a digit' }), json)
      .optional()
      .describe('Parameters and their defaults, read as ${{ params.NAME }}; override with --set NAME=VALUE.'),
    defaults: defaultsSchema.optional(),
    concurrency: z.int().min(1).max(1000).default(16).describe('Most stages running at once. @default 16'),
    stages: z
      .record(z.string().regex(STAGE_ID, { error: 'stage ids are lower-case letters, digits, _ and -, starting with a letter or digit' }), stageSchema)
      .refine((stages) => Object.keys(stages).length > 0, { error: 'a pipeline needs at least one stage' })
      .meta({ minProperties: 1 })
      .describe('The stages, by id. Order does not matter: `needs` and expressions decide it.'),
  })
  .describe('A twinflow pipeline.');

/** A pipeline file after validation, before compilation. */
export type PipelineSpec = z.output<typeof pipelineSchema>;
/** One stage after validation. */
export type StageSpec = z.output<typeof stageSchema>;
/** A retry policy after validation, durations still as text. */
export type RetrySpec = z.output<typeof retrySchema>;

type JsonSchema = Record<string, unknown>;

const EXPRESSION_DEF = {
  type: 'string',
  pattern: '\\$\\{\\{',
  description: 'A ${{ }} expression, resolved when the stage runs.',
};

/**
 * JSON Schema of one kind's `with`. Fields that are not plain strings also accept an
 * expression, because `${{ params.n }}` is a string until the stage runs.
 */
function withJsonSchema(uses: string, schema: z.ZodObject, description: string): { with: JsonSchema; defs: JsonSchema } {
  const generated = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as JsonSchema;
  // Nested $defs of a kind move to the root under a prefix, so their $refs still resolve.
  const prefix = `${uses.replace(/[^A-Za-z0-9]/g, '-')}--`;
  const renamed = JSON.parse(JSON.stringify(generated).replaceAll('"#/$defs/', `"#/$defs/${prefix}`)) as JsonSchema;
  const { $schema: _ignored, $defs = {}, ...rest } = renamed;
  const properties = (rest.properties ?? {}) as Record<string, JsonSchema>;
  for (const [field, property] of Object.entries(properties)) {
    if (property.type === 'string') continue;
    const { description: help, ...type } = property;
    properties[field] = { ...(help === undefined ? {} : { description: help }), anyOf: [type, { $ref: '#/$defs/expression' }] };
  }
  const defs = Object.fromEntries(Object.entries($defs as JsonSchema).map(([name, def]) => [`${prefix}${name}`, def]));
  return { with: { ...rest, description }, defs };
}

/**
 * JSON Schema (draft 2020-12) of pipeline files, for editors. Each stage kind adds its
 * own `with` fields through an if/then on `uses`, so editors complete them. The output
 * is the same for the same kinds, so a checked-in copy can be compared in CI.
 */
export function pipelineJsonSchema(): JsonSchema {
  const root = z.toJSONSchema(pipelineSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const stage = ((root.properties as JsonSchema).stages as JsonSchema).additionalProperties as JsonSchema;
  const sorted = [...kinds.values()].sort((a, b) => a.uses.localeCompare(b.uses));
  const uses = (stage.properties as JsonSchema).uses as JsonSchema;
  uses.enum = sorted.map((k) => k.uses);
  uses.enumDescriptions = sorted.map((k) => k.description);
  const defs: JsonSchema = { ...(root.$defs as JsonSchema), expression: EXPRESSION_DEF };
  stage.allOf = sorted.map((kind) => {
    const generated = withJsonSchema(kind.uses, kind.with, kind.description);
    Object.assign(defs, generated.defs);
    return {
      if: { properties: { uses: { const: kind.uses } }, required: ['uses'] },
      then: { properties: { with: generated.with } },
    };
  });
  return { $schema: root.$schema, title: 'twinflow pipeline', ...root, $defs: defs };
}
