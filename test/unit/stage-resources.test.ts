/**
 * A stage's `resources:` (GPUs it needs from its worker):
 * - compiled into the stage only when asked for, so other pipelines compile as before
 * - bad values and unknown fields are reported at file:line:col with what to write
 * - approvals and reviews, which run nothing on a worker, may not ask
 * - the JSON Schema offers the field with its help text
 */
import { describe, expect, it } from 'vitest';
import { checkPipelineText } from '../../engine/compile.js';
import { formatDiagnostic } from '../../engine/diagnostics.js';
import { pipelineJsonSchema } from '../../engine/schema.js';

const pipeline = (stage: string) => `name: p\nstages:\n  train:\n    uses: core/shell\n    with: { run: 'true' }\n${stage}`;
const problems = (text: string) => checkPipelineText(text, 'p.yaml').diagnostics.map(formatDiagnostic);

describe('stage resources', () => {
  it('compiles the GPUs a stage asks for into the stage, and leaves the field out when it asks for none', () => {
    const { pipeline: compiled, diagnostics } = checkPipelineText(
      `${pipeline('    queue: gpu\n    resources: { gpus: 2 }\n')}  plain: { uses: core/noop }\n`, 'p.yaml');
    expect(diagnostics).toEqual([]);
    expect(compiled!.stages.train!.resources).toEqual({ gpus: 2 });
    expect(compiled!.stages.plain).not.toHaveProperty('resources');
    expect(checkPipelineText(pipeline('    resources: {}\n'), 'p.yaml').pipeline!.stages.train).not.toHaveProperty('resources');
  });

  it('gives every matrix expansion the same resources', () => {
    const { pipeline: compiled } = checkPipelineText(pipeline('    resources: { gpus: 1 }\n    matrix: { seed: [1, 2] }\n'), 'p.yaml');
    expect(Object.values(compiled!.stages).map((s) => s.resources)).toEqual([{ gpus: 1 }, { gpus: 1 }]);
  });

  it('reports bad GPU counts and unknown resources where they are written', () => {
    expect(problems(pipeline('    resources: { gpus: 0 }\n'))).toEqual(['p.yaml:6:24: stages.train.resources.gpus: a stage asks for at least 1 GPU; leave gpus out for none']);
    expect(problems(pipeline('    resources: { gpus: 1.5 }\n'))).toEqual([expect.stringMatching(/^p\.yaml:6:24: stages\.train\.resources\.gpus: expected a whole number of GPUs, e\.g\. 2/)]);
    expect(problems(pipeline('    resources: { gpus: two }\n'))).toEqual([expect.stringMatching(/^p\.yaml:6:24: stages\.train\.resources\.gpus: expected a whole number of GPUs, e\.g\. 2, found the string "two"/)]);
    expect(problems(pipeline('    resources: { gpu: 1 }\n'))).toEqual(['p.yaml:6:18: unknown field gpu in stages.train.resources; did you mean gpus?']);
  });

  it('refuses resources on a stage that runs nothing on a worker', () => {
    const text = 'name: p\nstages:\n  gate:\n    uses: core/approval\n    resources: { gpus: 1 }\n';
    expect(problems(text)).toEqual(['p.yaml:5:5: stage gate: core/approval waits for a person and runs no command on a worker; remove resources']);
  });

  it('offers resources.gpus in the JSON Schema, with its help', () => {
    const stage = (pipelineJsonSchema() as { properties: { stages: { additionalProperties: { properties: Record<string, Record<string, unknown>> } } } })
      .properties.stages.additionalProperties;
    const resources = stage.properties.resources as { additionalProperties: boolean; properties: { gpus: { type: string; minimum: number; description: string } } };
    expect(resources.additionalProperties).toBe(false);
    expect(resources.properties.gpus).toMatchObject({ type: 'integer', minimum: 1 });
    expect(resources.properties.gpus.description).toMatch(/CUDA_VISIBLE_DEVICES.*--gpus N. @default 0/);
  });
});
