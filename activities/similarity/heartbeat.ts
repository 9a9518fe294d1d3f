import type { Context } from '@temporalio/activity';

const HEARTBEAT_MS = 200;

export interface Progress {
  done: number;
  total: number;
  unit: string;
}

/**
 * Heartbeats `progress` now and every 200 ms until the returned function is called (which
 * beats once more). onnxruntime runs on the event loop's thread, so beats land between
 * score blocks, each a fraction of a second at Twin scale.
 */
export function startHeartbeat(ctx: Context, progress: Progress): () => void {
  const beat = () => ctx.heartbeat({ progress: { ...progress } });
  beat();
  const timer = setInterval(beat, HEARTBEAT_MS);
  return () => {
    clearInterval(timer);
    beat();
  };
}
