import type { StageHeartbeat } from '../stage-io.js';

/** A line of gpu/dreambooth.py's progress log. */
export type ProgressEvent =
  | { event: 'start'; instance: string }
  | { event: 'step'; instance: string; step: number; total: number; loss: number }
  | { event: 'image'; instance: string; n: number; total: number }
  | { event: 'done'; instance: string; steps: number; loss: number };

export function parseProgress(line: string): ProgressEvent | undefined {
  try {
    const v = JSON.parse(line) as ProgressEvent;
    return typeof v?.instance === 'string' && ['start', 'step', 'image', 'done'].includes(v.event) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** What the heartbeats say: instances finished out of all, and where the current one is. */
export class ProgressState {
  private finished: number;
  private last?: ProgressEvent;

  constructor(private readonly total: number, resumed: number) {
    this.finished = resumed;
  }

  add(event: ProgressEvent): void {
    if (event.event === 'done') this.finished++;
    this.last = event;
  }

  /** "mug-red: step 120/500, loss 0.1234" or "mug-red: image 3/5". */
  describe(): string | undefined {
    const e = this.last;
    if (!e) return undefined;
    if (e.event === 'step') return `${e.instance}: step ${e.step}/${e.total}, loss ${e.loss.toFixed(4)}`;
    if (e.event === 'image') return `${e.instance}: image ${e.n}/${e.total}`;
    if (e.event === 'start') return `${e.instance}: loading its images`;
    return `${e.instance}: done`;
  }

  heartbeat(): StageHeartbeat {
    const message = this.describe();
    const e = this.last;
    return {
      progress: { done: this.finished, total: this.total, unit: 'instances', ...(message ? { message } : {}) },
      ...(e?.event === 'step' ? { metrics: { step: e.step, loss: e.loss } } : {}),
    };
  }
}
