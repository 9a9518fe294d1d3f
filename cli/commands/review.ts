import fs from 'node:fs/promises';
import path from 'node:path';
import { openStores } from '../../activities/store/config.js';
import { finalDecisions, replayVotes } from '../../activities/review/audit.js';
import { readAudit } from '../../activities/review/close.js';
import { describeProblems, readJsonl, type JsonlProblem } from '../../activities/data/jsonl.js';
import type { ArtifactRef } from '../../engine/types.js';
import { MAX_DECISIONS_PER_UPDATE, stripControls, type AuditRecord, type ReviewDecisionInput } from '../../workflows/review-messages.js';
import {
  auditSnapshot, decideItems, queueIds, reviewProgress, reviewStage, runStatus, ReviewRequestError,
} from '../../review/queue-client.js';
import { connect, type Session } from '../client.js';
import { CliError } from '../errors.js';
import { whoami } from '../identity.js';

/** `twinflow review export` and `twinflow review decide`: the review queue from a terminal or a script. */

async function withSession<T>(work: (session: Session) => Promise<T>): Promise<T> {
  const session = await connect();
  try {
    return await work(session);
  } catch (err) {
    if (err instanceof ReviewRequestError) throw new CliError(err.message, undefined, err.kind === 'invalid' ? 2 : 1);
    throw err;
  } finally {
    await session.close();
  }
}

export interface ExportOptions {
  /** @default `<stage>.decisions.jsonl` */
  decisions?: string;
  /** @default `<stage>.audit.jsonl` */
  audit?: string;
}

/** Writes a review's decisions (one final decision per decided item) and its audit, open or closed. */
export async function reviewExportCommand(runId: string, stage: string, opts: ExportOptions): Promise<void> {
  const store = openStores().artifacts;
  const decisionsFile = opts.decisions ?? `${fileName(stage)}.decisions.jsonl`;
  const auditFile = opts.audit ?? `${fileName(stage)}.audit.jsonl`;
  await withSession(async (session) => {
    const rec = reviewStage(await runStatus(session, runId), stage);
    const outputs = rec.outputs as { decisions?: ArtifactRef; audit?: ArtifactRef } | undefined;
    if (outputs?.decisions && outputs.audit) {
      await fs.copyFile((await store.file(outputs.decisions)), decisionsFile);
      await fs.copyFile((await store.file(outputs.audit)), auditFile);
      console.log(`${stage} (closed): ${outputs.decisions.counts?.rows ?? '?'} decisions -> ${decisionsFile}; ${outputs.audit.counts?.rows ?? '?'} audit records -> ${auditFile}`);
      return;
    }
    if (rec.state !== 'waiting' || !rec.review) throw new CliError(`review ${stage} of run ${runId} is ${rec.state}; it has no decisions yet`);
    const [progress, snapshot] = await Promise.all([reviewProgress(session, runId, stage), auditSnapshot(session, runId, stage)]);
    const records: AuditRecord[] = [];
    for await (const r of readAudit(store, snapshot.segments)) records.push(r);
    records.push(...snapshot.pending);
    const tally = finalDecisions(await queueIds(progress.queue, store), replayVotes(records), { choices: progress.choices, quorum: progress.quorum });
    await writeLines(decisionsFile, tally.decisions);
    await writeLines(auditFile, records);
    console.log(`${stage} (open, ${progress.decided}/${progress.total} decided): ${tally.decisions.length} decisions -> ${decisionsFile}; ${records.length} audit records -> ${auditFile}`);
  });
}

export interface DecideFileOptions {
  file: string;
  /** Who decides lines without their own `by`. @default $TWINFLOW_USER or the login name */
  as?: string;
  /** @default 500 */
  batch?: number;
}

interface FileDecision extends ReviewDecisionInput {
  by?: string;
}

/**
 * Sends decisions from a JSONL file (`{"id", "choice"}` or `{"id", "undo": true}`, with
 * optional `note` and `by`) in batches. Every line is checked against the review's items
 * and choices first; a bad line stops everything before anything is sent.
 */
export async function reviewDecideCommand(runId: string, stage: string, opts: DecideFileOptions): Promise<void> {
  const batch = Math.min(opts.batch ?? 500, MAX_DECISIONS_PER_UPDATE);
  await withSession(async (session) => {
    const progress = await reviewProgress(session, runId, stage);
    const known = new Set(await queueIds(progress.queue));
    const rows = await readDecisionFile(opts.file, known, progress.choices);
    const byPerson = new Map<string, ReviewDecisionInput[]>();
    for (const { by, ...d } of rows) {
      const who = stripControls(by ?? whoami(opts.as));
      byPerson.set(who, [...(byPerson.get(who) ?? []), d]);
    }
    const sum = { applied: 0, duplicates: 0, undone: 0, skipped: [] as Array<{ id: string; reason: string }> };
    let last = progress;
    for (const [by, list] of byPerson) {
      for (let i = 0; i < list.length; i += batch) {
        const result = await decideItems(session, runId, stage, by, list.slice(i, i + batch));
        sum.applied += result.applied;
        sum.duplicates += result.duplicates;
        sum.undone += result.undone;
        sum.skipped.push(...result.skipped);
        last = result.progress;
      }
    }
    console.log(`${runId} ${stage}: ${sum.applied} applied, ${sum.duplicates} already recorded, ${sum.undone} undone, ${sum.skipped.length} skipped; ${last.decided}/${last.total} items decided`);
    for (const s of sum.skipped.slice(0, 10)) console.log(`  skipped ${s.id}: ${s.reason}`);
    if (sum.skipped.length > 10) console.log(`  ... and ${sum.skipped.length - 10} more`);
  });
}

async function readDecisionFile(file: string, known: Set<string>, choices: string[]): Promise<FileDecision[]> {
  await fs.access(file).catch(() => { throw new CliError(`cannot read ${file}`, 'give a JSONL file of {"id": ..., "choice": ...} lines', 2); });
  const problems: JsonlProblem[] = [];
  const rows: FileDecision[] = [];
  for await (const { value: v, line } of readJsonl<FileDecision>(file, (p) => problems.push(p))) {
    const wrong = typeof v?.id !== 'string' ? 'needs a string "id"'
      : !known.has(v.id) ? `unknown item ${v.id}`
      : v.undo === true ? (v.choice !== undefined ? 'give either "choice" or "undo": true' : undefined)
      : typeof v.choice !== 'string' ? 'needs "choice" (or "undo": true)'
      : !choices.includes(v.choice) ? `"${v.choice}" is not a choice; choices: ${choices.join(', ')}`
      : undefined;
    const badBy = v?.by !== undefined && (typeof v.by !== 'string' || !stripControls(v.by).trim()) ? '"by" must be a name' : undefined;
    if (wrong ?? badBy) problems.push({ file, line, message: (wrong ?? badBy)! });
    // Names and notes reach terminals: control characters go here, line by line, rather than refusing the whole batch later.
    else rows.push({ id: v.id, ...(v.undo ? { undo: true } : { choice: v.choice! }), ...(typeof v.note === 'string' ? { note: stripControls(v.note, 'lines') } : {}), ...(v.by ? { by: stripControls(v.by) } : {}) });
  }
  if (problems.length) throw new CliError(`${file} has ${describeProblems(problems)}; nothing was sent`, undefined, 2);
  if (!rows.length) throw new CliError(`${file} holds no decisions`, undefined, 2);
  return rows;
}

async function writeLines(file: string, rows: unknown[]): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await fs.writeFile(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

function fileName(stage: string): string {
  return stage.replace(/[^A-Za-z0-9._-]+/g, '_');
}
