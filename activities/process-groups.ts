import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';

/** Facts about processes and process groups on this host, for locks and watchdogs. */

/** The environment variable every stage process group carries: the attempt's lock token. */
export const ATTEMPT_ENV = 'TWINFLOW_ATTEMPT';

/** Whether a process still runs. A zombie (killed, not yet reaped) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return state(pid) !== 'Z';
}

function state(pid: number): string | undefined {
  try {
    // Synchronous on purpose: /proc reads never block, and isAlive is used in polling loops.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** Whether any process of the group still runs (zombies aside). */
export async function groupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (!existsSync('/proc')) return true;
  return (await members(pgid)).some((pid) => state(pid) !== 'Z');
}

/**
 * Whether the group is still the one an attempt started: some live member carries the
 * attempt's token in its environment. A group id is a pid, and pids are reused; this is
 * what keeps a successor from killing a stranger's processes.
 */
export async function groupIsOurs(pgid: number, token: string): Promise<boolean> {
  if (!(await groupAlive(pgid))) return false;
  if (!existsSync('/proc')) return true;
  for (const pid of await members(pgid)) {
    const environ = await fs.readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '');
    if (environ.split('\0').includes(`${ATTEMPT_ENV}=${token}`)) return true;
  }
  return false;
}

/** Sends `signal` to the group and, for SIGKILL, waits (up to 5 s) until it is gone. */
export async function killGroup(pgid: number, signal: NodeJS.Signals): Promise<void> {
  try {
    process.kill(-pgid, signal);
  } catch {
    return;
  }
  if (signal !== 'SIGKILL') return;
  for (let i = 0; i < 50 && (await groupAlive(pgid)); i++) await new Promise((r) => setTimeout(r, 100));
}

async function members(pgid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (which may hold spaces): state ppid pgrp ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid) pids.push(Number(name));
  }
  return pids;
}
