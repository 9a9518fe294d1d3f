import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../engine/diagnostics.js';
import { loadPipelineFile, loadPipelineText } from '../../engine/load.js';

const fixtures = path.resolve(import.meta.dirname, '../fixtures/pipelines');

/** Diagnostics of a fixture as `LINE:COL: message`, the file name left out. */
function problems(name: string): string[] {
  const file = path.join(fixtures, name);
  return loadPipelineFile(file).diagnostics.map((d) => formatDiagnostic(d).slice(file.length + 1));
}

describe('loadPipelineFile', () => {
  it('loads a valid file into a spec with defaults filled in', () => {
    const result = loadPipelineFile(path.join(fixtures, 'diamond.yaml'));
    expect(result.diagnostics).toEqual([]);
    expect(result.spec?.name).toBe('diamond');
    expect(result.spec?.concurrency).toBe(16);
    expect(Object.keys(result.spec!.stages)).toEqual(['bottom', 'left', 'right', 'top']);
    expect(result.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reports every YAML syntax error, not only the first', () => {
    expect(problems('syntax-errors.yaml')).toEqual([
      '4:3: YAML: Flow map in block collection must be sufficiently indented and end with a }',
      '5:1: YAML: Tabs are not allowed as indentation',
    ]);
  });

  it('reports a duplicate key at the second occurrence and names the first', () => {
    expect(problems('duplicate-key.yaml')).toEqual(['8:3: duplicate key build (first at line 3); YAML would keep only the last one']);
  });

  it('stops an alias bomb and says what it is', () => {
    const started = performance.now();
    expect(problems('alias-bomb.yaml')).toEqual([
      '4:8: aliases expand to more than 100 copies (a "billion laughs" pattern); write the values out or use fewer aliases',
    ]);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('points an unknown field at its key and suggests the right name', () => {
    expect(problems('unknown-field.yaml')).toEqual([
      '5:5: unknown field need in stages.fetch; did you mean needs?',
      '8:27: unknown field backof in stages.other.retry; did you mean backoff?',
    ]);
  });

  it('lists the allowed fields when an unknown field is not a near miss', () => {
    const { diagnostics } = loadPipelineText('name: x\nstages:\n  a:\n    uses: core/noop\n    priority: 3\n', 'p.yaml');
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ line: 5, col: 5 });
    expect(diagnostics[0]!.message).toMatch(/unknown field priority in stages.a; allowed: uses, description, needs, with/);
  });

  it('points a missing field at the mapping that lacks it', () => {
    expect(problems('missing-field.yaml')).toEqual(['4:5: stages.fetch: missing required field uses']);
    const { diagnostics } = loadPipelineText('stages:\n  a: { uses: core/noop }\n', 'p.yaml');
    expect(diagnostics.map(formatDiagnostic)).toEqual(['p.yaml:1:1: missing required field name']);
  });

  it('says what type was expected and what was found', () => {
    expect(problems('wrong-type.yaml')).toEqual([
      '2:14: concurrency: expected a number, found the string "many"',
      '6:12: stages.fetch.cache: expected true or false, found the string "yes"',
      '7:12: stages.fetch.needs: expected a stage id or a list of stage ids, found the number 5',
    ]);
  });

  it('explains bad durations at the value', () => {
    expect(problems('bad-duration.yaml')).toEqual([
      '5:14: stages.slow.timeout: expected a duration such as 90s, 10m or 1h30m, found the number 30',
      '6:16: stages.slow.heartbeat: duration "0s" must be more than zero; write a number with a unit: 500ms, 90s, 10m, 48h, 2d, or combined like 1h30m',
      '7:36: stages.slow.retry.backoff: expected a duration; write a number with a unit: 500ms, 90s, 10m, 48h, 2d, or combined like 1h30m',
    ]);
  });

  it('points a bad stage id at the key', () => {
    const { diagnostics } = loadPipelineText('name: x\nstages:\n  Build:\n    uses: core/noop\n', 'p.yaml');
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      'p.yaml:3:3: stages.Build: stage ids are lower-case letters, digits, _ and -, starting with a letter or digit',
    ]);
  });

  it.each([
    ['empty.yaml', '1:1: file is empty; a pipeline needs `name` and `stages`'],
    ['comments-only.yaml', '1:1: file is empty; a pipeline needs `name` and `stages`'],
    ['binary.yaml', '1:1: file is binary (it contains NUL bytes), not a YAML pipeline'],
    ['latin1.yaml', '1:1: file is not valid UTF-8 text; save it as UTF-8'],
  ])('gives %s a single clear message', (name, message) => {
    expect(problems(name)).toEqual([message]);
  });

  it('reports a missing file instead of throwing', () => {
    expect(problems('no-such-file.yaml')).toEqual(['1:1: cannot read the pipeline file: no such file']);
  });
});

describe('loadPipelineText', () => {
  it('refuses a file that is a list, not a mapping', () => {
    expect(loadPipelineText('- a\n- b\n', 'p.yaml').diagnostics[0]!.message).toMatch(/a pipeline is a mapping .* this file holds a list/);
  });

  it('refuses a second YAML document at its ---', () => {
    const { diagnostics } = loadPipelineText('name: x\nstages: { a: { uses: core/noop } }\n---\nname: y\n', 'p.yaml');
    expect(diagnostics).toMatchObject([{ line: 3, col: 1, message: expect.stringMatching(/one YAML document/) }]);
  });

  it('treats unknown tags and aliases without anchors as errors', () => {
    const { diagnostics } = loadPipelineText('name: !secret x\nstages: { a: { uses: *kind } }\n', 'p.yaml');
    expect(diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`)).toEqual([
      '1:7: YAML: Unresolved tag: !secret',
      '2:22: alias *kind has no anchor &kind before it',
    ]);
  });

  it('accepts anchors and merge keys for shared settings', () => {
    const text = 'name: x\nx-retry: &r { attempts: 3 }\nstages:\n  a: { uses: core/noop, retry: *r }\n';
    // The top-level x-retry is not a pipeline field, so only that is reported; the alias itself is fine.
    expect(loadPipelineText(text, 'p.yaml').diagnostics.map((d) => d.message)).toEqual(['unknown field x-retry; allowed: name, description, params, defaults, concurrency, stages']);
    const merged = 'name: x\nstages:\n  a: &base { uses: core/noop, timeout: 5m }\n  b: { <<: *base, needs: a }\n';
    expect(loadPipelineText(merged, 'p.yaml').spec?.stages.b).toEqual({ uses: 'core/noop', timeout: '5m', needs: 'a' });
  });

  it('hashes the text so the same file always has the same digest', () => {
    const a = loadPipelineText('name: x\nstages: { a: { uses: core/noop } }\n', 'p.yaml');
    const b = loadPipelineText('name: x\nstages: { a: { uses: core/noop } }\n', 'q.yaml');
    const c = loadPipelineText('name: y\nstages: { a: { uses: core/noop } }\n', 'p.yaml');
    expect(a.digest).toBe(b.digest);
    expect(a.digest).not.toBe(c.digest);
  });
});
