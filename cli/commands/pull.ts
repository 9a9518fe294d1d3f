import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { digestOf } from '../../activities/artifact-store.js';
import { openStores } from '../../activities/store/config.js';
import { pullTree, TREE_MEDIA_TYPE } from '../../activities/store/tree.js';
import { isArtifactRef } from '../../engine/cache-key.js';
import type { ArtifactRef, Json } from '../../engine/types.js';
import { connect } from '../client.js';
import { CliError } from '../errors.js';
import { fetchRun } from '../run-status.js';

/**
 * `twinflow pull ARTIFACT DEST`: an artifact's bytes on this machine, from whichever store
 * TWINFLOW_STORE names. ARTIFACT is `artifact:sha256:…`, a bare digest, or RUN/STAGE/OUTPUT
 * (a stage's output in a run, e.g. `run-1/assemble/datasetTree`). A folder artifact becomes
 * the folder DEST; a file artifact the file DEST (or DEST/<digest> when DEST is a folder).
 */
export async function pullCommand(artifact: string, dest: string): Promise<void> {
  const { artifacts: store, location } = openStores();
  const ref = await refOf(artifact);
  if (!(await store.has(ref))) {
    throw new CliError(`${typeof ref === 'string' ? ref : ref.uri} is not in the artifact store at ${location}`, 'set TWINFLOW_STORE (and the AWS_* settings) to the store the run used');
  }
  if (await isTree(store, ref)) {
    let last = 0;
    const tree = await pullTree(store, ref, dest, (done, total) => {
      if (process.stderr.isTTY && Date.now() - last > 200) { last = Date.now(); process.stderr.write(`\r${done}/${total} files`); }
    });
    if (process.stderr.isTTY) process.stderr.write('\r');
    const bytes = tree.files.reduce((sum, f) => sum + f.bytes, 0);
    console.log(`pulled ${tree.files.length} files (${(bytes / 2 ** 20).toFixed(1)} MiB) into ${path.resolve(dest)}`);
    return;
  }
  const isDir = await fs.stat(dest).then((s) => s.isDirectory(), () => false);
  const out = isDir ? path.join(dest, digestOf(ref)) : dest;
  await fs.copyFile(await store.file(ref), out, fsConstants.COPYFILE_FICLONE);
  console.log(`pulled ${typeof ref === 'string' ? ref : ref.uri} into ${path.resolve(out)}`);
}

async function isTree(store: ReturnType<typeof openStores>['artifacts'], ref: string | ArtifactRef): Promise<boolean> {
  if (typeof ref !== 'string' && ref.mediaType) return ref.mediaType === TREE_MEDIA_TYPE;
  // A reference without its media type (a bare digest): a tree is a small JSON manifest saying so (pullTree checks the rest).
  const { size } = await fs.stat(await store.file(ref));
  if (size > 64 * 2 ** 20) return false;
  try {
    return (JSON.parse((await store.read(ref)).toString('utf8')) as { twinflow?: unknown })?.twinflow === 'tree/1';
  } catch {
    return false;
  }
}

/** An artifact URI or digest as given, or the artifact a run's stage output names. */
async function refOf(artifact: string): Promise<string | ArtifactRef> {
  if (/^(artifact:sha256:)?[0-9a-f]{64}$/.test(artifact)) return artifact.startsWith('artifact:') ? artifact : `artifact:sha256:${artifact}`;
  const [runId, stage, ...output] = artifact.split('/');
  if (!runId || !stage || !output.length) {
    throw new CliError(`${artifact} is not an artifact`, 'give artifact:sha256:DIGEST, a digest, or RUN/STAGE/OUTPUT (e.g. run-1/assemble/datasetTree)', 2);
  }
  const session = await connect();
  try {
    const run = await fetchRun(session, runId);
    const s = run.stages[stage];
    if (!s) throw new CliError(`run ${runId} has no stage ${stage}`, `stages: ${run.order.join(', ')}`, 2);
    let value: Json | undefined = s.outputs ?? undefined;
    for (const name of output) value = value && typeof value === 'object' && !Array.isArray(value) ? value[name] : undefined;
    if (value === undefined || !isArtifactRef(value)) {
      throw new CliError(`${stage}'s output ${output.join('.')} in run ${runId} is not an artifact`, `its outputs: ${Object.keys(s.outputs ?? {}).join(', ') || 'none yet'}`, 2);
    }
    return value as unknown as ArtifactRef;
  } finally {
    await session.close();
  }
}
