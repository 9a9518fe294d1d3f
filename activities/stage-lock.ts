import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { groupIsOurs, isAlive, killGroup } from './process-groups.js';
import { FAILURE } from './failures.js';

/**
 * One attempt of a stage at a time in its folder. Temporal runs an activity at least once:
 * when a worker stops heartbeating, the next attempt may start while the old one (a hung
 * worker, a tool that ignores SIGTERM) still writes. Every attempt holds this lock on the
 * stage folder while it runs. A lock left by a worker that is gone is taken over, and its
 * process groups still alive on this host are killed first; a lock whose holder still
 * lives is waited for (the holder's next heartbeat tells it that it lost the stage).
 */

const POLL_MS = 250;

/**
 * The lock sits beside the folder, not in it: stages list, archive and clear their own
 * folders, and a cache entry fingerprints the folders its outputs name.
 */
export function lockFileOf(dir: string): string {
  return path.join(path.dirname(dir), `.${path.basename(dir)}.lock`);
}

/** Who holds a stage folder. */
export interface LockHolder {
  token: string;
  host: string;
  /** The worker process running the attempt. */
  pid: number;
  attempt: number;
  activityId: string;
  since: string;
  /** Process groups the attempt started (tools, scripts), so a successor can stop them. */
  groups: number[];
}

export interface AcquireOptions {
  attempt: number;
  activityId: string;
  /** How long to wait for a live holder before failing (retryably). */
  waitMs: number;
  /** Called while waiting, so the waiting attempt is not taken for lost itself. */
  onWait: (holder: LockHolder) => void;
  signal: AbortSignal;
}

const current = new AsyncLocalStorage<StageLock>();

/** The lock of the attempt running in this async context, if any (see runInProcessGroup). */
export function currentStageLock(): StageLock | undefined {
  return current.getStore();
}

export class StageLock {
  private constructor(readonly file: string, private holder: LockHolder) {}

  get token(): string {
    return this.holder.token;
  }

  /** Takes the lock on `dir`, waiting for (or clearing away) an earlier attempt. */
  static async acquire(dir: string, opts: AcquireOptions): Promise<StageLock> {
    await fs.mkdir(dir, { recursive: true });
    const file = lockFileOf(dir);
    const mine: LockHolder = {
      token: randomUUID(), host: os.hostname(), pid: process.pid, attempt: opts.attempt, activityId: opts.activityId,
      since: new Date().toISOString(), groups: [],
    };
    const deadline = Date.now() + opts.waitMs;
    for (;;) {
      if (await create(file, mine)) return new StageLock(file, mine);
      const held = await readHolder(file);
      if (held && (await clearIfAbandoned(file, held))) continue;
      if (held && Date.now() > deadline) throw busy(dir, held, opts.waitMs);
      if (opts.signal.aborted) throw ApplicationFailure.retryable('cancelled while waiting for the stage folder', 'Cancelled');
      if (held) opts.onWait(held);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** Runs `work` with this lock as the context's current one. */
  run<T>(work: () => Promise<T>): Promise<T> {
    return current.run(this, work);
  }

  /** Records a process group the attempt started. */
  async recordGroup(pgid: number): Promise<void> {
    this.holder = { ...this.holder, groups: [...this.holder.groups, pgid] };
    const tmp = `${this.file}.${this.holder.token}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(this.holder));
    await fs.rename(tmp, this.file);
  }

  /** Lets go, unless another attempt has taken the folder over meanwhile. */
  async release(): Promise<void> {
    const held = await readHolder(this.file);
    if (held?.token === this.holder.token) await fs.rm(this.file, { force: true });
  }
}

async function create(file: string, holder: LockHolder): Promise<boolean> {
  try {
    await fs.writeFile(file, JSON.stringify(holder), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as LockHolder;
  } catch {
    // Being written this very moment (create writes in one go, but not atomically): look again.
    return undefined;
  }
}

/**
 * A holder on this host whose worker is gone: kill what is left of its groups (a tool that
 * ignored the watchdog's SIGTERM) and remove its lock. True when the lock was cleared.
 */
async function clearIfAbandoned(file: string, held: LockHolder): Promise<boolean> {
  if (held.host !== os.hostname() || isAlive(held.pid)) return false;
  for (const pgid of held.groups) {
    if (await groupIsOurs(pgid, held.token)) await killGroup(pgid, 'SIGKILL');
  }
  const again = await readHolder(file);
  if (again?.token !== held.token) return false;
  await fs.rm(file, { force: true });
  return true;
}

function busy(dir: string, held: LockHolder, waitMs: number): ApplicationFailure {
  return ApplicationFailure.create({
    type: FAILURE.stageFolderBusy,
    message:
      `the stage folder ${dir} is still used by attempt ${held.attempt} (${held.activityId}) of worker pid ${held.pid} on ${held.host} ` +
      `since ${held.since}; it did not let go within ${Math.round(waitMs / 1000)} s. If that worker is gone for good, ` +
      `stop what it left running and remove ${lockFileOf(dir)}; the stage retries by itself.`,
  });
}
