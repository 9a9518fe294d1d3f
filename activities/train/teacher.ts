import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { teacherKind } from '../../engine/kinds/train.js';
import type { ArtifactStore } from '../artifact-store.js';
import { mapBounded } from '../data/concurrency.js';
import { writeDatasetInfo } from '../export/sharegpt.js';
import { cancelled, incomplete, invalidInput } from '../failures.js';
import { AnswerLog, askEach, type Question } from '../fgvqa/answer-log.js';
import { parseAnswer } from '../fgvqa/answers.js';
import type { HomeLayout } from '../home.js';
import { parseInputs } from '../inputs.js';
import type { Implementation } from '../kind-implementation.js';
import type { StageActivityInput } from '../stage-io.js';
import { putTree } from '../store/tree.js';
import { folderOnThisHost } from '../store/folder-input.js';

export const TEACHER_FILE = 'teacher.sharegpt.json';
export const TEACHER_DATASET = 'twin_teacher';

interface ShareGptRow {
  messages: Array<{ role: string; content: string }>;
  images: string[];
}

interface Pair extends Question {
  label: string;
  row: ShareGptRow;
}

/**
 * `teacher/answer`: every pair of a sharegpt export to a teacher, its answers logged as they
 * arrive (a retry asks only the rest), then the pairs it answered correctly, inside
 * `<answer>` tags, written as a sharegpt dataset with the teacher's words as the assistant
 * turn and the images beside it.
 */
export function createTeacherAnswers(deps: { store: ArtifactStore; home: HomeLayout }): Implementation<typeof teacherKind> {
  return async function answerWithTeacher(input: StageActivityInput) {
    const ctx = Context.current();
    const spec = parseInputs(teacherKind.with, input);
    const where = `stage ${input.stageId} (teacher/answer)`;
    const dir = deps.home.stageDir(input.runId, input.stageId);
    await fs.mkdir(dir, { recursive: true });
    const dataset = await folderOnThisHost(deps.store, spec.dataset, dir, 'dataset', where);
    const file = path.resolve(dataset, spec.file);
    const text = await fs.readFile(file, 'utf8').catch(() => {
      throw invalidInput(`${where}: with.file: ${spec.file} is not in the dataset ${dataset}; build it with twin/assemble \`exports: [sharegpt]\``);
    });
    const pairs = readPairs(text, path.dirname(file), spec.instruction, where).slice(0, spec.limit);

    // Answers resume for the same pairs, teacher and prompt; another model or instruction starts over.
    const fingerprint = createHash('sha256').update(JSON.stringify([createHash('sha256').update(text).digest('hex'), spec.model, spec.instruction, spec.maxTokens])).digest('hex').slice(0, 12);
    const log = await AnswerLog.open(path.join(dir, `answers.partial.${fingerprint}.jsonl`), new Set(pairs.map((p) => p.id)));
    const resumed = log.answers.size;
    const todo = pairs.filter((p) => !log.answers.has(p.id));
    const failures: Array<{ id: string; error: string }> = [];
    const beat = () => ctx.heartbeat({ progress: { done: log.answers.size, total: pairs.length, unit: 'pairs', ...(failures.length ? { message: `${failures.length} failed` } : {}) } });
    const ticker = setInterval(beat, 2_000);
    let asked;
    try {
      asked = await askEach({
        endpoint: spec.endpoint, model: spec.model, apiKey: process.env[spec.apiKeyEnv] || undefined, maxTokens: spec.maxTokens,
        timeoutMs: spec.timeoutSeconds * 1000, retries: spec.retries, signal: ctx.cancellationSignal,
      }, todo, spec.concurrency, { keep: (id, output) => log.keep(id, output), fail: (id, error) => failures.push({ id, error }) });
    } finally {
      clearInterval(ticker);
      await log.close();
    }
    beat();
    if (ctx.cancellationSignal.aborted) throw cancelled(`${where}: cancelled with ${log.answers.size} of ${pairs.length} answers kept`);
    if (failures.length) {
      throw incomplete(`${where}: ${failures.length} of ${pairs.length} pairs got no answer (${failures.slice(0, 3).map((f) => `${f.id}: ${f.error}`).join('; ')}); ` +
        `the ${log.answers.size} answers are kept in ${log.file}: retry the stage to ask only the rest`);
    }

    const out = path.join(dir, 'sharegpt');
    await fs.rm(out, { recursive: true, force: true });
    await fs.mkdir(out, { recursive: true });
    const kept: ShareGptRow[] = [];
    let wrong = 0;
    let untagged = 0;
    for (const p of pairs) {
      const output = log.answers.get(p.id)!;
      const said = parseAnswer('pair', output, true);
      if (said === null) untagged++;
      else if (said !== p.label) wrong++;
      else kept.push({ messages: [p.row.messages[0]!, { role: 'assistant', content: output.trim() }], images: p.row.images });
    }
    // The images the kept rows use, at the same relative paths (hard links where the file system allows).
    const images = [...new Set(kept.flatMap((r) => r.images))];
    await mapBounded(images, 16, async (rel) => {
      const target = path.join(out, rel);
      await fs.mkdir(path.dirname(target), { recursive: true });
      const from = path.resolve(path.dirname(file), rel);
      await fs.link(from, target).catch(() => fs.copyFile(from, target, fsConstants.COPYFILE_FICLONE));
    });
    await fs.writeFile(path.join(out, TEACHER_FILE), `${JSON.stringify(kept)}\n`);
    await writeDatasetInfo(path.join(out, 'dataset_info.json'), { [TEACHER_DATASET]: TEACHER_FILE });
    const tree = await putTree(deps.store, out);
    return {
      outputs: {
        dataset: { ...tree, counts: { ...tree.counts, rows: kept.length } },
        datasetDir: out,
        counts: { pairs: pairs.length, asked: todo.length, resumed, kept: kept.length, wrong, untagged, requests: asked.requests },
      },
      attempt: ctx.info.attempt,
    };
  };
}

/** The pairs of a sharegpt file, each with its question for the teacher, its images on this host and its label. */
function readPairs(text: string, base: string, instruction: string, where: string): Pair[] {
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch (err) {
    throw invalidInput(`${where}: the sharegpt file is not JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(rows)) throw invalidInput(`${where}: the sharegpt file is not a JSON array of rows`);
  return rows.map((row: ShareGptRow, i) => {
    const [user, assistant] = Array.isArray(row?.messages) ? row.messages : [];
    const label = assistant ? parseAnswer('pair', assistant.content, true) : null;
    if (user?.role !== 'user' || !label || !Array.isArray(row.images) || row.images.length !== 2) {
      throw invalidInput(`${where}: row ${i} of the sharegpt file is not a Twin pair (a user turn, an assistant turn with <answer>yes|no</answer>, two images)`);
    }
    const question = `${user.content.replace(/<image>/g, '').trim()}\n\n${instruction}`;
    return { id: `pair-${i}`, question, images: row.images.map((img) => path.resolve(base, img)), label, row };
  });
}
