import logUpdate from 'log-update';
import type { Session } from './client.js';
import { fetchRun, type RunView } from './run-status.js';
import { renderRun, stageDetail } from './render.js';

export interface WatchOptions {
  intervalMs?: number;
  /** Live table on a terminal; one line per stage change otherwise (logs, CI). */
  live?: boolean;
  out?: (line: string) => void;
}

const ended = (run: RunView) => run.state === 'succeeded' || run.state === 'cancelled' || run.state === 'failed';

/** Follows a run until it ends and returns its last state. */
export async function watchRun(session: Session, runId: string, opts: WatchOptions = {}): Promise<RunView> {
  // A terminal that reports no size (some CI shells) would get an empty live frame; print lines there.
  const live = opts.live ?? Boolean(process.stdout.isTTY && process.stdout.rows > 0);
  const out = opts.out ?? ((line: string) => console.log(line));
  const seen = new Map<string, string>();
  let lastRunState = '';
  for (;;) {
    const run = await fetchRun(session, runId);
    if (live) {
      logUpdate(renderRun(run));
    } else {
      for (const id of run.order) {
        const s = run.stages[id]!;
        const line = `${s.state}${stageDetail(s) ? `: ${stageDetail(s)}` : ''}`;
        if (seen.get(id) !== s.state) out(`${id}: ${line}`);
        seen.set(id, s.state);
      }
      if (run.state !== lastRunState) out(`run ${runId}: ${run.state}`);
      lastRunState = run.state;
    }
    if (ended(run)) {
      if (live) logUpdate.done();
      return run;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 1_000));
  }
}
