import { checkPipelineFile } from '../../engine/compile.js';
import { formatDiagnostic } from '../../engine/diagnostics.js';
import type { CompiledPipeline } from '../../engine/types.js';
import { waitsForPeople } from '../../engine/people.js';
import { CliError } from '../errors.js';

/** Loads and compiles a pipeline, or prints every problem as FILE:LINE:COL and exits with 2. */
export function compileOrExit(file: string, set: Record<string, string> = {}): CompiledPipeline {
  const { pipeline, diagnostics } = checkPipelineFile(file, { set });
  if (diagnostics.length > 0 || !pipeline) {
    for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
    const n = diagnostics.length;
    throw new CliError(`${file}: ${n} problem${n === 1 ? '' : 's'} found; nothing was submitted`, undefined, 2);
  }
  return pipeline;
}

export function validateCommand(file: string, opts: { set: Record<string, string> }): void {
  const p = compileOrExit(file, opts.set);
  const kinds = new Set(Object.values(p.stages).map((s) => s.uses));
  const waits = Object.values(p.stages).filter((s) => waitsForPeople(s, p.params)).length;
  console.log(
    `${file}: pipeline ${p.name} is valid: ${p.order.length} stage${p.order.length === 1 ? '' : 's'}, ` +
      `${kinds.size} kind${kinds.size === 1 ? '' : 's'}, ${waits} waiting for people`,
  );
}
