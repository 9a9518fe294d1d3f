/**
 * Problems a person fixes in a pipeline file. Every check in the engine reports them in
 * this one shape so the CLI prints `FILE:LINE:COL: message`, the format editors and
 * terminals turn into links.
 */

/** One problem at one place in a file. `line` and `col` are 1-based. */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
}

/** `FILE:LINE:COL: message`. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.message}`;
}

/** Orders by file, then position, then message, so output is stable run to run. */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort(
    (a, b) =>
      a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.message.localeCompare(b.message),
  );
}

/**
 * Levenshtein distance (insertions, deletions, substitutions) where swapping two
 * neighbouring characters also counts as one edit, the commonest typo (`biuld`).
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, rows[i - 2]![j - 2]! + 1);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/**
 * The candidate closest to `word`, when it is close enough to be a likely typo: at most
 * one edit for short words, about one edit in three for longer ones. Case differences
 * alone always count as close.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const distance = candidate.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, candidate);
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `; did you mean X?` when there is a close candidate, else an empty string: for appending to messages. */
export function suggestion(word: string, candidates: Iterable<string>): string {
  const hint = didYouMean(word, candidates);
  return hint === undefined ? '' : `; did you mean ${hint}?`;
}

/**
 * `; did you mean X?` for a likely typo, else `; LABEL: a, b, c` so the reader sees the
 * choices (or nothing when there are none).
 */
export function suggestOrList(word: string, candidates: Iterable<string>, label: string): string {
  const list = [...candidates];
  const hint = suggestion(word, list);
  if (hint !== '' || list.length === 0) return hint;
  return `; ${label}: ${list.join(', ')}`;
}

/** Thrown when a pipeline cannot be loaded or compiled; carries every problem found. */
export class PipelineError extends Error {
  readonly diagnostics: Diagnostic[];

  constructor(diagnostics: Diagnostic[]) {
    const n = diagnostics.length;
    super(
      `${n} problem${n === 1 ? '' : 's'} in the pipeline:\n${diagnostics.map(formatDiagnostic).join('\n')}`,
    );
    this.name = 'PipelineError';
    this.diagnostics = diagnostics;
  }
}
