import fs from 'node:fs/promises';
import type { ProbeInputs } from '../../engine/kinds/probe.js';
import { SourceError } from '../fgvqa/source-files.js';
import { invalidInput } from '../failures.js';
import type { StageActivityInput } from '../stage-io.js';
import type { StageLogs } from '../stage-log.js';
import { readCifar100 } from './cifar.js';
import { capPerClass, LayoutError, readCub, readPets, readSun397, type ProbeData } from './layouts.js';

/** What each layout expects, for errors about a folder that is not in it. */
const EXPECTED: Record<ProbeInputs['datasets'][number]['layout'], string> = {
  pets: 'Oxford-IIIT Pets: annotations/trainval.txt, annotations/test.txt and images/<Image>.jpg',
  sun397: 'SUN397: SUN397/<letter>/<class>/sun_*.jpg and Partitions/Training_NN.txt, Testing_NN.txt',
  cub: 'CUB-200-2011 (the CUB_200_2011 folder): images.txt, image_class_labels.txt, train_test_split.txt, classes.txt and images/',
  cifar100: 'CIFAR-100, python version: cifar-100-python/train, test and meta',
};

/**
 * A dataset in its own layout, capped to `maxPerClass` per split by the seed. A folder not
 * in that layout fails the stage without retries, naming the file and what was expected.
 */
export async function readDataset(
  d: ProbeInputs['datasets'][number], root: string, seed: number,
  run: { logs: StageLogs; input: StageActivityInput; where: string; python: string; dir: string },
): Promise<ProbeData> {
  let data: ProbeData;
  try {
    await fs.mkdir(run.dir, { recursive: true });
    if (d.layout === 'pets') data = await readPets(root);
    else if (d.layout === 'sun397') data = await readSun397(root, d.partition);
    else if (d.layout === 'cub') data = await readCub(root);
    else data = await readCifar100(root, run.dir, run);
  } catch (err) {
    if (err instanceof LayoutError || err instanceof SourceError) throw invalidInput(`${run.where}: ${err.message}; the layout expects ${EXPECTED[d.layout]} under ${root}`);
    throw err;
  }
  const train = capPerClass(data.train, d.maxPerClass, seed);
  const test = capPerClass(data.test, d.maxPerClass, seed + 1);
  if (!train.images.length || !test.images.length) {
    throw invalidInput(`${run.where}: ${root} has ${train.images.length} training and ${test.images.length} test images; expected ${EXPECTED[d.layout]}`);
  }
  return { classes: data.classes, train, test };
}
