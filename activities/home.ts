import path from 'node:path';

/**
 * Where twinflow keeps its state on a host: the dev server's SQLite file, the cache,
 * artifacts and stage logs. A shared mount here lets several hosts share one cache.
 * @default `.twinflow` in the current directory
 */
export function twinflowHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.TWINFLOW_HOME ?? '.twinflow');
}

/** Turns a stage id such as `train[size=5k]` into a safe file name. */
export function fileSafe(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]+/g, '_');
}

export interface HomeLayout {
  root: string;
  cacheDir: string;
  artifactsDir: string;
  runsDir: string;
  stageDir(runId: string, stageId: string): string;
  logFile(runId: string, stageId: string): string;
}

export function homeLayout(root: string = twinflowHome()): HomeLayout {
  const runsDir = path.join(root, 'runs');
  return {
    root,
    cacheDir: path.join(root, 'cache'),
    artifactsDir: path.join(root, 'artifacts'),
    runsDir,
    stageDir: (runId, stageId) => path.join(runsDir, fileSafe(runId), 'stages', fileSafe(stageId)),
    logFile: (runId, stageId) => path.join(runsDir, fileSafe(runId), 'logs', `${fileSafe(stageId)}.log`),
  };
}
