import { execFile } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const repo = path.resolve(import.meta.dirname, '../..');
// By URL, so the CLI also starts from a folder without node_modules.
const tsx = pathToFileURL(path.join(repo, 'node_modules/tsx/dist/loader.mjs')).href;

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs `twinflow ARGS` as a person would, against the given server and home, as user `tester`. */
export async function runTwinflow(env: { address: string; home: string; cwd?: string; env?: Record<string, string> }, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', tsx, path.join(repo, 'cli/main.ts'), ...args], {
      cwd: env.cwd ?? repo,
      env: { ...process.env, ...env.env, TEMPORAL_ADDRESS: env.address, TWINFLOW_HOME: env.home, TWINFLOW_USER: 'tester' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
