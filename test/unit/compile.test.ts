import path from 'node:path';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkPipelineFile, checkPipelineText, compilePipeline } from '../../engine/compile.js';
import { formatDiagnostic } from '../../engine/diagnostics.js';
import { loadPipelineText } from '../../engine/load.js';
import { kinds } from '../../engine/kinds/registry.js';

const fixtures = path.resolve(import.meta.dirname, '../fixtures/pipelines');

function compileFixture(name: string, set: Record<string, string> = {}) {
  return checkPipelineFile(path.join(fixtures, name), { set });
}

/** Diagnostics of a fixture as `LINE:COL: message`. */
function problems(name: string, set: Record<string, string> = {}): string[] {
  const file = path.join(fixtures, name);
  return checkPipelineFile(file, { set }).diagnostics.map((d) => formatDiagnostic(d).slice(file.length + 1));
}

function compileText(text: string, set: Record<string, string> = {}) {
  return checkPipelineText(text, 'p.yaml', { set });
}

describe('compiling a valid pipeline', () => {
  it('orders a diamond topologically, keeping declaration order between ready stages', () => {
    const { pipeline, diagnostics } = compileFixture('diamond.yaml');
    expect(diagnostics).toEqual([]);
    expect(pipeline!.order).toEqual(['top', 'left', 'right', 'bottom']);
    expect(pipeline!.stages.bottom!.needs).toEqual(['left', 'right']);
  });

  it('adds an implicit dependency on a stage whose outputs an input reads', () => {
    const { pipeline } = compileFixture('diamond.yaml');
    expect(pipeline!.stages.left!.needs).toEqual(['top']);
    expect(pipeline!.stages.left!.with).toEqual({ run: 'echo ${{ stages.top.outputs.word }}' });
  });

  it('takes handler, activity, shell fields, kind version and built-in defaults from the kind', () => {
    const { pipeline } = compileFixture('diamond.yaml');
    expect(pipeline!.stages.left).toMatchObject({
      id: 'left',
      key: 'left',
      uses: 'core/shell',
      kindVersion: '1',
      handler: 'activity',
      activity: 'core/shell',
      shellFields: ['run'],
      queue: 'cpu',
      timeoutMs: 3_600_000,
      heartbeatMs: 30_000,
      retry: { attempts: 1, backoffMs: 10_000, maxBackoffMs: 600_000 },
      cache: false,
    });
    expect(pipeline!.stages.left).not.toHaveProperty('if');
    expect(pipeline!.stages.left).not.toHaveProperty('matrix');
  });

  it('records the file, its sha256, the format version, params and concurrency', () => {
    const file = path.join(fixtures, 'matrix.yaml');
    const { pipeline } = checkPipelineFile(file);
    expect(pipeline).toMatchObject({ formatVersion: 1, name: 'sweep', source: file, params: { epochs: 2 }, maxParallel: 4 });
    expect(pipeline!.sourceDigest).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));
  });

  it('expands a matrix into one stage per combination, named by its values', () => {
    const { pipeline } = compileFixture('matrix.yaml');
    const ids = ['train[size=7,lr=0.1]', 'train[size=7,lr=0.01]', 'train[size=13,lr=0.1]', 'train[size=13,lr=0.01]'];
    expect(pipeline!.order).toEqual(['prepare', ...ids, 'report']);
    expect(pipeline!.stages[ids[1]!]).toMatchObject({ key: 'train', matrix: { size: 7, lr: 0.01 }, needs: ['prepare'] });
    expect(pipeline!.stages.report!.needs).toEqual(ids);
  });

  it('merges stage settings over defaults over the kind', () => {
    const { pipeline } = compileFixture('matrix.yaml');
    const train = pipeline!.stages['train[size=7,lr=0.1]']!;
    expect(train).toMatchObject({ queue: 'gpu', timeoutMs: 7_200_000, retry: { attempts: 5, backoffMs: 30_000, maxBackoffMs: 600_000 } });
    expect(pipeline!.stages.report).toMatchObject({ queue: 'cpu', timeoutMs: 90_000, heartbeatMs: 60_000, retry: { attempts: 3, backoffMs: 30_000 } });
  });

  it('stores a condition without its ${{ }}', () => {
    const { pipeline } = compileFixture('matrix.yaml');
    expect(pipeline!.stages.report!.if).toBe('params.epochs > 1');
  });

  it('lets a stage turn caching on and a boolean if stand for itself', () => {
    const { pipeline } = compileText('name: x\nstages:\n  a: { uses: core/shell, cache: true, if: false, with: { run: "true" } }\n');
    expect(pipeline!.stages.a).toMatchObject({ cache: true, if: 'false' });
  });

  it('compiles a spec without positions, reporting problems at 1:1', () => {
    const { spec, digest } = loadPipelineText('name: x\nstages:\n  a: { uses: core/nop }\n', 'p.yaml');
    const result = compilePipeline(spec!, { file: 'p.yaml', digest });
    expect(result.diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:1:1: stages.a.uses: unknown stage kind core/nop; did you mean core/noop?']);
  });
});

describe('--set overrides', () => {
  const text = 'name: x\nparams:\n  words: 3000\n  fast: false\n  tag: v1\n  sizes: [7]\n  extra: null\nstages:\n  a: { uses: core/noop }\n';

  it('coerces values to the type of the default', () => {
    const { pipeline } = compileText(text, { words: '500', fast: 'true', tag: '42', sizes: '[7, 13]', extra: '{"a": 1}' });
    expect(pipeline!.params).toEqual({ words: 500, fast: true, tag: '42', sizes: [7, 13], extra: { a: 1 } });
  });

  it('keeps the defaults of params that are not set', () => {
    expect(compileText(text).pipeline!.params).toEqual({ words: 3000, fast: false, tag: 'v1', sizes: [7], extra: null });
  });

  it('refuses values that do not fit the type, at the param', () => {
    const { pipeline, diagnostics } = compileText(text, { words: 'many', fast: 'yes', sizes: '7' });
    expect(pipeline).toBeUndefined();
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:3:3: --set words=many: params.words is a number (default 3000); "many" is not a number',
      'p.yaml:4:3: --set fast=yes: params.fast is true or false (default false); use true or false, not "yes"',
      'p.yaml:6:3: --set sizes=7: params.sizes is a list (default [7]); give it as JSON, e.g. \'["a","b"]\'',
    ]);
  });

  it('refuses an unknown param and lists the known ones', () => {
    const { diagnostics } = compileText(text, { word: '1' });
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      "p.yaml:2:1: --set word: unknown parameter word (did you mean words?); the pipeline's params are: words, fast, tag, sizes, extra",
    ]);
  });
});

describe('compile errors', () => {
  it('names the cycle, starting from the stage declared first', () => {
    expect(problems('cycle.yaml')).toEqual(['5:13: dependency cycle: a -> c -> b -> a; remove one of these needs or references']);
  });

  it('reports a stage that needs itself', () => {
    expect(problems('self-dependency.yaml')).toEqual(['5:13: stage loop needs itself; remove loop from its needs']);
  });

  it('reports a stage that reads its own outputs', () => {
    const { diagnostics } = compileText('name: x\nstages:\n  a: { uses: core/noop, with: { outputs: "${{ stages.a.outputs }}" } }\n');
    expect(diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:3:47: stage a cannot read its own outputs']);
  });

  it('suggests the closest kind for an unknown uses', () => {
    expect(problems('unknown-uses.yaml')).toEqual(['4:11: stages.run.uses: unknown stage kind core/shel; did you mean core/shell?']);
  });

  it('lists the kinds when an unknown uses is nothing like them', () => {
    expect(compileText('name: x\nstages:\n  a: { uses: zzz/qqqqqqq }\n').diagnostics[0]!.message).toBe(
      `stages.a.uses: unknown stage kind zzz/qqqqqqq; kinds: ${[...kinds.keys()].join(', ')}`,
    );
  });

  it('suggests the closest stage for an unknown need', () => {
    expect(problems('unknown-needs.yaml')).toEqual(['7:13: stages.test.needs: unknown stage biuld; did you mean build?']);
  });

  it('points unknown params and stages in expressions at the reference inside the string', () => {
    expect(problems('unknown-reference.yaml')).toEqual([
      '10:21: params.titel: unknown parameter; did you mean title?',
      '10:41: stages.sorce: unknown stage sorce; did you mean source?',
    ]);
  });

  it('finds references inside a block scalar on the right line and column', () => {
    const text = 'name: x\nstages:\n  a:\n    uses: core/shell\n    with:\n      run: |\n        echo one\n        echo ${{ params.nope }}\n';
    expect(compileText(text).diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:8:18: params.nope: unknown parameter']);
  });

  it('refuses reading outputs of a matrix stage', () => {
    expect(problems('matrix-output.yaml')).toEqual([
      '9:21: stages.train: train has a matrix, so it has one set of outputs per expansion; no single score to read',
    ]);
  });

  it('refuses matrix references in a stage without a matrix and unknown matrix names', () => {
    const text = 'name: x\nstages:\n  a: { uses: core/noop, with: { outputs: { s: "${{ matrix.size }}" } } }\n  b: { uses: core/noop, matrix: { size: [1] }, with: { outputs: { s: "${{ matrix.siz }}" } } }\n';
    expect(compileText(text).diagnostics.map((d) => d.message)).toEqual([
      'matrix.size: stage a has no matrix',
      'matrix.siz: unknown matrix value; did you mean size?',
    ]);
  });

  it('checks output names against kinds that declare them', () => {
    const text = 'name: x\nstages:\n  gate: { uses: core/approval }\n  b: { uses: core/shell, with: { run: "echo ${{ stages.gate.outputs.aproved }}" } }\n';
    expect(compileText(text).diagnostics.map((d) => d.message)).toEqual(['stages.gate.outputs.aproved: core/approval has no output aproved; did you mean approved?']);
  });

  it('reports an unterminated expression where it opens', () => {
    expect(problems('unterminated-expression.yaml')).toEqual(['6:17: unterminated ${{: close the expression with }}']);
  });

  it('reports a syntax error inside a condition at its column', () => {
    const text = "name: x\nparams: { mode: a }\nstages:\n  a: { uses: core/noop, if: \"${{ params.mode = 'full' }}\" }\n";
    expect(compileText(text).diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:4:46: invalid expression: use == to compare']);
  });

  it('checks with against the kind, except values given by expressions', () => {
    expect(problems('bad-with.yaml')).toEqual([
      '8:16: stages.gate.with.message: expected a string, found the number 42',
      '10:7: unknown field approver in stages.gate.with; did you mean approvers?',
      '14:7: stages.shell.with: missing required field run',
    ]);
  });

  it('counts a required field given by an expression as present', () => {
    const text = 'name: x\nparams: { cmd: ls }\nstages:\n  a: { uses: core/shell, with: { run: "${{ params.cmd }}", env: "${{ params.cmd }}" } }\n';
    expect(compileText(text).diagnostics).toEqual([]);
  });

  it('refuses a maxBackoff shorter than the backoff', () => {
    const text = 'name: x\nstages:\n  a: { uses: core/noop, retry: { backoff: 1m, maxBackoff: 10s } }\n';
    expect(compileText(text).diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:3:59: stage a: retry maxBackoff 10s is shorter than backoff 1m']);
  });

  it('refuses repeated matrix values, which would give two stages the same id', () => {
    const text = 'name: x\nstages:\n  a: { uses: core/noop, matrix: { lr: [0.1, 0.2, 0.1] } }\n';
    expect(compileText(text).diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:3:50: matrix lr: value 0.1 appears twice']);
  });

  it('reports problems of different stages together, sorted by position', () => {
    const text = 'name: bad\nstages:\n  a:\n    uses: core/shel\n  b:\n    uses: core/shell\n    needs: [zz]\n    with: { run: x }\n';
    expect(compileText(text).diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:4:11: stages.a.uses: unknown stage kind core/shel; did you mean core/shell?',
      'p.yaml:7:13: stages.b.needs: unknown stage zz; stages: a, b',
    ]);
  });

  it('returns loader problems when the file does not load', () => {
    expect(problems('duplicate-key.yaml')).toEqual(['8:3: duplicate key build (first at line 3); YAML would keep only the last one']);
  });

  it('refuses a pipeline that expands past what one run holds, with the numbers', () => {
    const values = Array.from({ length: 1000 }, (_, i) => i).join(', ');
    const stages = Array.from({ length: 105 }, (_, i) => `  s${i}: { uses: core/noop, matrix: { n: [${values}] } }`).join('\n');
    const { pipeline, diagnostics } = compileText(`name: huge\nstages:\n${stages}\n`);
    expect(pipeline).toBeUndefined();
    expect(diagnostics.map(formatDiagnostic)).toEqual([expect.stringMatching(/^p\.yaml:2:1: the pipeline expands to 105,000 stages; one run holds at most 2,000 .*2 MB/)]);
  });

  it('takes 2,000 stages and refuses 2,001', () => {
    const text = (n: number) => `name: wide\nstages:\n${Array.from({ length: n }, (_, i) => `  s${i}: { uses: core/noop }`).join('\n')}\n`;
    expect(compileText(text(2000)).pipeline?.order).toHaveLength(2000);
    expect(compileText(text(2001)).diagnostics.map(formatDiagnostic)).toEqual([expect.stringMatching(/expands to 2,001 stages; one run holds at most 2,000/)]);
  });

  it('refuses a compiled pipeline too large to travel in Temporal payloads', () => {
    const script = 'echo x\n'.repeat(120_000);
    const { diagnostics } = compileText(`name: long\nstages:\n  a: { uses: core/shell, with: { run: ${JSON.stringify(script)} } }\n`);
    expect(diagnostics.map(formatDiagnostic)).toEqual([expect.stringMatching(/the compiled pipeline is 9\d\d KB; one run holds at most 768 KB/)]);
  });
});
