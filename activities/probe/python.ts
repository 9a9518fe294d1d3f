import { fileURLToPath } from 'node:url';
import type { StageActivityInput, StageHeartbeat } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import { runTool } from '../tool-run.js';
import { cancelled, invalidInput } from '../failures.js';

/** This checkout's folder, where the probe's scripts (`gpu/probe_*.py`) and `.venv` are. */
export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const probeScript = (name: 'probe_fit.py' | 'probe_features.py' | 'probe_cifar.py') => fileURLToPath(new URL(`../../gpu/${name}`, import.meta.url));
/** The interpreter `npm run setup` gives numpy and scikit-learn. */
export const DEFAULT_PYTHON = fileURLToPath(new URL('../../.venv/bin/python', import.meta.url));

export interface PythonRun {
  what: string;
  python: string;
  argv: string[];
  env?: Record<string, string>;
  onLine?: (line: string) => void;
  heartbeat?: () => StageHeartbeat;
}

/**
 * One of the probe's scripts through runTool. The scripts exit 2 with a `probe_...: why`
 * line for inputs they cannot use: that fails the stage without retries, saying why; any
 * other failure is runTool's retryable one. Returns the last line of stdout.
 */
export async function runProbePython(logs: StageLogs, input: StageActivityInput, where: string, run: PythonRun): Promise<string> {
  let reason: string | undefined;
  let last = '';
  try {
    const done = await runTool(logs, input, {
      what: `${where}: ${run.what}`,
      argv: [run.python, ...run.argv] as [string, ...string[]],
      cwd: REPO,
      env: { PYTHONUNBUFFERED: '1', ...run.env },
      onLine: (line, stream) => {
        if (stream === 'stderr' && /^probe_\w+: /.test(line)) reason = line.replace(/^probe_\w+: /, '');
        if (stream === 'stdout' && line.trim()) last = line;
        run.onLine?.(line);
      },
      ...(run.heartbeat ? { heartbeat: run.heartbeat } : {}),
      hint: (exit) => (exit.exitCode === 127 || exit.exitCode === undefined ? `is ${run.python} an interpreter on this host? (npm run setup makes .venv/bin/python)` : undefined),
    });
    if (done.cancelled) throw cancelled(`${where}: cancelled`);
  } catch (err) {
    const exitCode = (err as { details?: Array<{ exitCode?: number }> }).details?.[0]?.exitCode;
    if (exitCode === 2 && reason) throw invalidInput(`${where}: ${reason}`);
    throw err;
  }
  return last;
}
