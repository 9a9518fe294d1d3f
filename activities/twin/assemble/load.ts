import type { AssembleSpec } from '../../../engine/kinds/assemble.js';
import type { ArtifactStore } from '../../artifact-store.js';
import { describeProblems, readJsonl, type JsonlProblem } from '../../data/jsonl.js';
import type { ManifestRow } from '../../data/manifest.js';
import { artifactFile, manifestFile } from '../../data/manifest-input.js';
import type { Decision, ReviewItem } from '../../review/items.js';
import { readDecisions } from '../../review/read-items.js';
import type { StageActivityInput } from '../../stage-io.js';
import { invalidInput } from '../../failures.js';

/**
 * Reading what twin/assemble combines: the instance manifest, the approved hard-negative
 * pairs and the approved generated images. Only compact indices are kept: a Twin-scale
 * input (1,836 instances, 22K images, tens of thousands of review items) is a few MB.
 */

/** One distinct image (by content; its bytes are in the artifact store) and whether it was generated. */
export interface SourceImage {
  sha256: string;
  generated: boolean;
}

export interface LoadedInstance {
  id: string;
  category: string;
  /** Indices into `Loaded.images`, manifest order. */
  real: number[];
  generated: number[];
}

/** How the people-in-the-loop decisions were applied; it goes to stats.json as is. */
export interface DecisionTally {
  items: number;
  accepted: number;
  rejected: number;
  undecided: number;
}

export interface Loaded {
  instances: LoadedInstance[];
  images: SourceImage[];
  /** Unordered approved pairs as instance indices, smaller id first, sorted by ids. */
  hardPairs: Array<[number, number]>;
  hard: DecisionTally & { pairs: number; repeatedPairs: number };
  generated: DecisionTally;
  /** Images left out because an earlier image (manifest order) has the same bytes. */
  duplicateImages: number;
  /** Images of role 'generated' in with.instances: generated images only count through with.generated. */
  ignoredGenerated: number;
}

type Fail = (message: string) => never;

export function failer(input: StageActivityInput): Fail {
  return (message) => {
    throw invalidInput(`stage ${input.stageId} (${input.uses}): ${message}`);
  };
}

/** Reads every input of the stage; bad or mismatched inputs fail without retries, saying what to pass. */
export async function loadAssemblyInputs(store: ArtifactStore, spec: AssembleSpec, input: StageActivityInput): Promise<Loaded> {
  const fail = failer(input);
  if (spec.hardNegatives && !spec.hardDecisions) {
    fail('with.hardNegatives is set but with.hardDecisions is not: hard-negative candidates count only once people (or a policy) accepted them; add a core/review or core/decide stage over them and pass its decisions as with.hardDecisions');
  }
  if (spec.generated && !spec.generatedDecisions) {
    fail('with.generated is set but with.generatedDecisions is not: generated images count only once accepted; add a core/review or core/decide stage over the gen:<sha256> items and pass its decisions as with.generatedDecisions');
  }
  const loaded = await readInstances(await manifestFile(store, spec.instances, input), fail);
  if (spec.generated && spec.generatedDecisions) {
    const decisions = await readDecisions(store, spec.generatedDecisions, input, 'with.generatedDecisions');
    await addGenerated(loaded, await artifactFile(store, spec.generated, input, 'with.generated'), decisions, fail);
  }
  if (spec.hardNegatives && spec.hardDecisions) {
    const decisions = await readDecisions(store, spec.hardDecisions, input, 'with.hardDecisions');
    await addHardPairs(loaded, await artifactFile(store, spec.hardNegatives, input, 'with.hardNegatives'), decisions, fail);
  }
  return loaded;
}

function emptyLoaded(): Loaded {
  return {
    instances: [], images: [], hardPairs: [], duplicateImages: 0, ignoredGenerated: 0,
    hard: { items: 0, accepted: 0, rejected: 0, undecided: 0, pairs: 0, repeatedPairs: 0 },
    generated: { items: 0, accepted: 0, rejected: 0, undecided: 0 },
  };
}

async function readInstances(file: string, fail: Fail): Promise<Loaded & { seen: Map<string, number>; byId: Map<string, number> }> {
  const loaded = { ...emptyLoaded(), seen: new Map<string, number>(), byId: new Map<string, number>() };
  const problems: JsonlProblem[] = [];
  for await (const { value: row, line } of readJsonl<ManifestRow>(file, (p) => problems.push(p))) {
    if (typeof row?.instance_id !== 'string' || !Array.isArray(row.images)) {
      problems.push({ file, line, message: 'a manifest row needs instance_id and images[]' });
      continue;
    }
    if (loaded.byId.has(row.instance_id)) fail(`with.instances line ${line}: instance ${row.instance_id} appears twice; pass the output of twin/merge`);
    const inst: LoadedInstance = { id: row.instance_id, category: String(row.category ?? 'other'), real: [], generated: [] };
    for (const image of row.images) {
      if (image.role === 'generated') { loaded.ignoredGenerated++; continue; }
      if (!image.sha256) fail(`with.instances line ${line}: instance ${row.instance_id} has an image without sha256 (${image.path ?? image.origin}); assemble reads a prepared manifest, so run images/prepare first`);
      const index = addImage(loaded, image.sha256, false);
      if (index !== undefined) inst.real.push(index);
    }
    loaded.byId.set(inst.id, loaded.instances.length);
    loaded.instances.push(inst);
  }
  if (problems.length) {
    fail(`with.instances has ${describeProblems(problems)}; fix the stage that wrote it`);
  }
  return loaded;
}

/** Each distinct content once: an image whose bytes an earlier one has is dropped, so no image is in two instances. */
function addImage(loaded: Loaded & { seen: Map<string, number> }, sha256: string, generated: boolean): number | undefined {
  if (loaded.seen.has(sha256)) { loaded.duplicateImages++; return undefined; }
  loaded.seen.set(sha256, loaded.images.length);
  loaded.images.push({ sha256, generated });
  return loaded.images.length - 1;
}

async function addGenerated(
  loaded: Loaded & { seen: Map<string, number>; byId: Map<string, number> }, file: string, decisions: Map<string, Decision>, fail: Fail,
): Promise<void> {
  for await (const { value: row, line } of readJsonl<ManifestRow>(file, (p) => fail(`with.generated line ${p.line}: ${p.message}`))) {
    const at = loaded.byId.get(row?.instance_id);
    if (at === undefined) fail(`with.generated line ${line}: instance ${String(row?.instance_id)} is not in with.instances; pass the manifest the images were generated from`);
    for (const image of Array.isArray(row.images) ? row.images : []) {
      if (!image.sha256) fail(`with.generated line ${line}: a generated image of ${row.instance_id} has no sha256; store generated images through the artifact store`);
      loaded.generated.items++;
      const choice = decisions.get(`gen:${image.sha256}`)?.choice;
      if (choice === undefined) { loaded.generated.undecided++; continue; }
      if (choice !== 'accept') { loaded.generated.rejected++; continue; }
      loaded.generated.accepted++;
      const index = addImage(loaded, image.sha256, true);
      if (index !== undefined) loaded.instances[at]!.generated.push(index);
    }
  }
}

/** Accepted hard-negative items become unordered instance pairs; (A,B) and (B,A) are one pair. */
async function addHardPairs(
  loaded: Loaded & { byId: Map<string, number> }, file: string, decisions: Map<string, Decision>, fail: Fail,
): Promise<void> {
  const pairs = new Map<string, [number, number]>();
  const onProblem = (p: JsonlProblem) => fail(`with.hardNegatives line ${p.line}: ${p.message}`);
  for await (const { value: item, line } of readJsonl<ReviewItem>(file, onProblem)) {
    if (typeof item?.id !== 'string') fail(`with.hardNegatives line ${line}: an item needs a string id`);
    loaded.hard.items++;
    const choice = decisions.get(item.id)?.choice;
    if (choice === undefined) { loaded.hard.undecided++; continue; }
    if (choice !== 'accept') { loaded.hard.rejected++; continue; }
    loaded.hard.accepted++;
    const pair = instancePair(item, loaded.byId, line, fail);
    const key = `${pair[0]} ${pair[1]}`;
    if (pairs.has(key)) loaded.hard.repeatedPairs++;
    else pairs.set(key, pair);
  }
  const id = (i: number) => loaded.instances[i]!.id;
  loaded.hardPairs = [...pairs.values()].sort((x, y) => compare(id(x[0]), id(y[0])) || compare(id(x[1]), id(y[1])));
  loaded.hard.pairs = loaded.hardPairs.length;
}

function instancePair(item: ReviewItem, byId: Map<string, number>, line: number, fail: Fail): [number, number] {
  // metadata names the pair; an item without it still carries it in its id, `hn:<anchor>|<candidate>`.
  const fromId = /^hn:([^|]+)\|(.+)$/.exec(item.id);
  const anchor = String(item.metadata?.anchor ?? fromId?.[1]);
  const candidate = String(item.metadata?.candidate ?? fromId?.[2]);
  const a = byId.get(anchor);
  const b = byId.get(candidate);
  if (a === undefined || b === undefined) {
    fail(`with.hardNegatives line ${line}: item ${item.id} names instances ${anchor} and ${candidate} (metadata.anchor, metadata.candidate), which are not both in with.instances; pass the manifest twin/shortlist read`);
  }
  if (a === b) fail(`with.hardNegatives line ${line}: item ${item.id} pairs instance ${anchor} with itself`);
  return compare(anchor, candidate) < 0 ? [a, b] : [b, a];
}

/** Code-unit order, the same on every host and locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
