import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance, formatDiagnostic, PipelineError, sortDiagnostics, suggestOrList } from '../../engine/diagnostics.js';

describe('diagnostics', () => {
  it('formats a diagnostic as FILE:LINE:COL: message', () => {
    expect(formatDiagnostic({ file: 'p.yaml', line: 4, col: 11, message: 'unknown stage kind' })).toBe('p.yaml:4:11: unknown stage kind');
  });

  it('counts a swap of neighbouring letters as one edit', () => {
    expect(editDistance('biuld', 'build')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });

  it('suggests the closest candidate for a small typo', () => {
    expect(didYouMean('core/shel', ['core/noop', 'core/shell', 'core/approval'])).toBe('core/shell');
    expect(didYouMean('need', ['uses', 'needs', 'with'])).toBe('needs');
    expect(didYouMean('Needs', ['needs'])).toBe('needs');
  });

  it('suggests nothing when every candidate is far away', () => {
    expect(didYouMean('zz', ['a', 'b'])).toBeUndefined();
    expect(didYouMean('deploy', ['train', 'evaluate'])).toBeUndefined();
  });

  it('lists the choices when there is no close suggestion', () => {
    expect(suggestOrList('zz', ['a', 'b'], 'stages')).toBe('; stages: a, b');
    expect(suggestOrList('bb', ['a', 'b'], 'stages')).toBe('; did you mean b?');
  });

  it('sorts diagnostics by position', () => {
    const at = (line: number, col: number) => ({ file: 'f', line, col, message: `${line}:${col}` });
    expect(sortDiagnostics([at(3, 1), at(1, 9), at(1, 2)]).map((d) => d.message)).toEqual(['1:2', '1:9', '3:1']);
  });

  it('carries every diagnostic in a PipelineError and lists them in its message', () => {
    const error = new PipelineError([{ file: 'f', line: 1, col: 1, message: 'one' }, { file: 'f', line: 2, col: 1, message: 'two' }]);
    expect(error.diagnostics).toHaveLength(2);
    expect(error.message).toContain('f:2:1: two');
  });
});
