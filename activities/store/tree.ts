import { randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactRef } from '../../engine/types.js';
import type { ArtifactStore } from '../artifact-store.js';
import { mapBounded } from '../data/concurrency.js';
import { filesUnder } from '../host-files.js';

/** A folder artifact: the manifest of its files by digest (each file is an artifact of its own). */
export const TREE_MEDIA_TYPE = 'application/vnd.twinflow.tree+json';

export interface TreeManifest {
  twinflow: 'tree/1';
  /** Every regular file, `/`-separated paths relative to the folder, sorted by path. */
  files: Array<{ path: string; sha256: string; bytes: number }>;
}

const CONCURRENCY = 8;

/** An artifact read as a folder that is not one (or names a path outside the folder). */
export class NotAFolderArtifact extends Error {}

/**
 * Stores a folder (a `twin/assemble` dataset, a checkpoint) as a tree: every file is put
 * once by content, then the manifest naming them. The same files give the same digest
 * wherever and whenever the folder was written (mtimes and the folder's own path do not count).
 */
export async function putTree(
  store: ArtifactStore, folder: string, known: ReadonlyMap<string, Pick<ArtifactRef, 'sha256' | 'bytes'>> = new Map(),
): Promise<ArtifactRef> {
  const rels: string[] = [];
  for await (const [rel] of filesUnder(folder)) rels.push(rel);
  rels.sort();
  // `known`: files the caller has just put (or that are in the store by their digest already): not hashed again.
  const refs = await mapBounded(rels, CONCURRENCY, async (rel) => known.get(rel) ?? store.putFile(path.join(folder, ...rel.split('/'))));
  const manifest: TreeManifest = { twinflow: 'tree/1', files: rels.map((rel, i) => ({ path: rel, sha256: refs[i]!.sha256, bytes: refs[i]!.bytes })) };
  const ref = await store.putBytes(JSON.stringify(manifest), TREE_MEDIA_TYPE);
  return { ...ref, counts: { files: rels.length, bytes: refs.reduce((sum, r) => sum + r.bytes, 0) } };
}

/** Reads and checks a tree manifest: a path that would leave the folder is refused. */
export async function readTree(store: ArtifactStore, ref: string | Pick<ArtifactRef, 'uri' | 'sha256'>): Promise<TreeManifest> {
  let tree: TreeManifest;
  try {
    tree = JSON.parse((await store.read(ref)).toString('utf8')) as TreeManifest;
  } catch (err) {
    if (err instanceof SyntaxError) throw new NotAFolderArtifact(`${typeof ref === 'string' ? ref : ref.uri} is not a folder artifact (not JSON)`);
    throw err;
  }
  if (tree?.twinflow !== 'tree/1' || !Array.isArray(tree.files)) throw new NotAFolderArtifact(`${typeof ref === 'string' ? ref : ref.uri} is not a folder artifact`);
  for (const f of tree.files) {
    const parts = typeof f?.path === 'string' ? f.path.split('/') : [];
    if (!parts.length || parts.some((p) => p === '' || p === '.' || p === '..') || f.path.includes('\\') || f.path.includes('\0')) {
      throw new NotAFolderArtifact(`folder artifact names an unsafe path ${JSON.stringify(f?.path)}; refusing to write it`);
    }
  }
  return tree;
}

/**
 * Writes a tree's files under `dir`, each downloaded (and checked against its digest) through
 * the store. Built beside `dir` and moved into place at the end, so `dir` is whole or absent.
 * Refuses a `dir` that exists and is not empty.
 */
export async function pullTree(
  store: ArtifactStore, ref: string | Pick<ArtifactRef, 'uri' | 'sha256'>, dir: string, onFile?: (done: number, total: number) => void,
): Promise<TreeManifest> {
  const tree = await readTree(store, ref);
  const target = path.resolve(dir);
  const entries = await fs.readdir(target).catch(() => undefined);
  if (entries?.length) throw new Error(`${target} already exists and is not empty; pull into a new folder`);
  const partial = `${target}.${randomUUID().slice(0, 8)}.partial`;
  let done = 0;
  try {
    await mapBounded(tree.files, CONCURRENCY, async (f) => {
      const out = path.join(partial, ...f.path.split('/'));
      await fs.mkdir(path.dirname(out), { recursive: true });
      await fs.copyFile(await store.file(f.sha256), out, fsConstants.COPYFILE_FICLONE);
      onFile?.(++done, tree.files.length);
    });
    if (entries) await fs.rmdir(target);
    await fs.rename(partial, target);
  } catch (err) {
    await fs.rm(partial, { recursive: true, force: true });
    throw err;
  }
  return tree;
}
