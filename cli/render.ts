import type { Progress } from '../engine/types.js';
import type { RunView, StageView } from './run-status.js';

const ICONS: Record<string, string> = {
  pending: '·', running: '▶', succeeded: '✓', cached: '≡', failed: '✗', waiting: '⏸', skipped: '↷',
};

/**
 * Text from a run (names, notes, outputs, a tool's log) made safe for a terminal: control
 * characters (ESC sequences could move the cursor, retitle the window or hide lines) show
 * as \xNN escapes. Tabs stay; newlines stay only where asked for.
 */
export function printable(text: string, keepNewlines = false): string {
  return text.replace(keepNewlines ? /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g : /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function progressBar(p: Progress, width = 20): string {
  if (!p.total) return `${p.done}${p.unit ? ` ${p.unit}` : ''}${p.message ? ` ${p.message}` : ''}`;
  const ratio = Math.max(0, Math.min(1, p.done / p.total));
  const filled = Math.round(ratio * width);
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  return `${bar} ${Math.floor(ratio * 100)}% ${p.done}/${p.total}${p.message ? ` ${p.message}` : ''}`;
}

export function elapsed(from?: string, to?: string, now = Date.now()): string {
  if (!from) return '';
  const ms = (to ? Date.parse(to) : now) - Date.parse(from);
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** What a person should know about a stage, in one line; `live`: the run can still be moved on. */
export function stageDetail(s: StageView, live = true): string {
  if (!live && (s.state === 'waiting' || s.state === 'failed')) {
    const what = s.error?.type === 'Cancelled' ? 'stopped' : s.state === 'waiting' ? 'never decided' : `failed: ${firstLine(s.error?.message)}`;
    return `${what} (the run was cancelled)`;
  }
  switch (s.state) {
    case 'running':
      if (s.queued) {
        const why = s.events.at(-1)?.event === 'worker-stopped' ? 'worker stopped, waiting for a worker' : 'queued: waiting for a worker';
        return `${why} on queue ${s.queue} (npx tsx worker.ts --queue ${s.queue})`;
      }
      return s.progress ? progressBar(s.progress) : '';
    case 'waiting':
      if (s.waitingFor === 'review') {
        return `waits for review${s.progress ? ` ${progressBar(s.progress)}` : ''}: twinflow review ${runIdOf(s)}`;
      }
      return `waits for approval${s.approvers?.length ? ` by ${s.approvers.join(' or ')}` : ''}${s.message ? `: ${s.message}` : ''}`;
    case 'failed':
      return `${firstLine(s.error?.message)} (retry or skip it)`;
    case 'skipped':
      return s.skippedReason ?? '';
    case 'cached':
      return s.cachedFrom ? `from ${s.cachedFrom.runId}` : 'cache hit';
    case 'succeeded':
      if (s.uses === 'core/review' && s.outputs?.counts) return reviewSummary(s.outputs.counts as Record<string, number>, s.outputs.outcome);
      return s.approval ? `approved by ${s.approval.by}${s.approval.note ? `: ${s.approval.note}` : ''}` : outputsSummary(s);
    default:
      return '';
  }
}

/** The review page command needs the run id; the review workflow id starts with it. */
function runIdOf(s: StageView): string {
  const id = s.review?.workflowId ?? '';
  const cut = id.lastIndexOf('/review/');
  return cut > 0 ? `${id.slice(0, cut)} ${id.slice(cut + '/review/'.length)}` : 'RUN STAGE';
}

function outputsSummary(s: StageView): string {
  const keys = Object.keys(s.outputs ?? {});
  return keys.length ? `outputs: ${keys.join(', ')}` : '';
}

function reviewSummary(counts: Record<string, number>, outcome: unknown): string {
  const skip = new Set(['items', 'people', 'automatic', 'undecided']);
  const choices = Object.entries(counts).filter(([k]) => !skip.has(k)).map(([k, n]) => `${k} ${n}`).join(', ');
  const who = outcome === 'policy' ? 'by policy' : `${counts.people ?? 0} by people${counts.automatic ? `, ${counts.automatic} at the deadline` : ''}`;
  return `${counts.items ?? 0} items decided (${who}): ${choices}`;
}

function firstLine(text?: string): string {
  return (text ?? '').split('\n')[0] ?? '';
}

/** The stage table printed by `status`, `run --wait` and `status --watch`. */
export function renderRun(run: RunView, now = Date.now()): string {
  const head = `run ${run.runId}  pipeline ${run.pipeline}  state ${run.state.toUpperCase()}  ${elapsed(run.startedAt, run.endedAt, now)}`;
  const rows = run.order.map((id) => {
    const s = run.stages[id]!;
    const live = run.state !== 'cancelled';
    return [`${ICONS[s.state] ?? '?'} ${id}`, s.state, s.uses, s.queue, elapsed(s.startedAt, s.endedAt, now), s.attempts ? String(s.attempts) : '', stageDetail(s, live)];
  });
  return [printable(head), '', ...table(['STAGE', 'STATE', 'KIND', 'QUEUE', 'TIME', 'TRIES', 'DETAIL'], rows)].join('\n');
}

export function table(header: string[], raw: string[][]): string[] {
  const rows = raw.map((r) => r.map((cell) => printable(cell)));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}
