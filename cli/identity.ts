import os from 'node:os';

/** Who is deciding: `--as`, else $TWINFLOW_USER, else the login name. */
export function whoami(as?: string): string {
  if (as) return as;
  if (process.env.TWINFLOW_USER) return process.env.TWINFLOW_USER;
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}
