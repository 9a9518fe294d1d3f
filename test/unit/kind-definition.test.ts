import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { kindFamilies, kindList } from '../../engine/kinds/registry.js';
import { kindTable, missingTables, writeKindTables } from '../../engine/kind-docs.js';
import { checkOutputs } from '../../activities/index.js';
import { activitiesInTempHome } from '../support/activity-env.js';
import type { StageActivityInput } from '../../activities/stage-io.js';

const env = activitiesInTempHome('twinflow-kinds-');
const input = (uses: string): StageActivityInput => ({ runId: 'r', stageId: 's', uses, kindVersion: '1', with: {}, shellEnv: {} });

describe('one definition per kind', () => {
  it('registers every kind that runs on a worker under its uses name, and the old activity names of runs compiled before', () => {
    const acts = env.acts as unknown as Record<string, unknown>;
    for (const kind of kindList) {
      if (kind.handler === 'approval') expect(acts[kind.uses]).toBeUndefined();
      else expect(typeof acts[kind.uses], kind.uses).toBe('function');
    }
    expect(acts.readCatalog).toBe(acts['twin/source']);
    expect(acts.predictFgvqa).toBe(acts['fgvqa/predict']);
    expect(acts.openReview).toBe(acts['core/review']);
  });

  it('puts every kind in exactly one README family', () => {
    for (const kind of kindList) expect(kindFamilies.filter((f) => f.kinds.includes(kind)).length, kind.uses).toBe(1);
  });

  it('fails a stage whose outputs do not match what its kind declares, without retries, naming the field', () => {
    const good = { instances: ref(), report: ref(), counts: { before: 2, after: 1, merged: 1, accepted: 1, rejected: 0, undecided: 0, duplicateImages: 0 } };
    expect(checkOutputs(input('twin/merge'), good)).toEqual(good);
    const err = (() => { try { checkOutputs(input('twin/merge'), { ...good, counts: { ...good.counts, after: 'one' } }); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'InvalidStageOutput', nonRetryable: true });
    expect((err as Error).message).toMatch(/stage s \(twin\/merge\) ended with outputs that do not match .*outputs\.counts\.after: /);
    expect(() => checkOutputs(input('twin/merge'), { instances: ref() })).toThrow(/outputs\.report/);
  });
});

describe('README kind tables', () => {
  it('are what the registry says (npm run kinds:readme writes them)', () => {
    const readme = fs.readFileSync('README.md', 'utf8');
    expect(missingTables(readme, kindFamilies)).toEqual([]);
    expect(writeKindTables(readme, kindFamilies)).toBe(readme);
  });

  it('list inputs with the defaults of their schema, and outputs by name', () => {
    const table = kindTable(kindFamilies.find((f) => f.id === 'twin')!);
    expect(table).toContain('| `images/prepare` |');
    expect(table).toMatch(/`maxSide` \[512\], `format` \[jpeg\]/);
    expect(table).toMatch(/\| `instances`, `quarantine`, `counts` \| yes \|/);
    const stale = fs.readFileSync('README.md', 'utf8').replace('`maxSide` [512]', '`maxSide` [1024]');
    expect(writeKindTables(stale, kindFamilies)).not.toBe(stale);
  });
});

function ref() {
  return { uri: `artifact:sha256:${'a'.repeat(64)}`, sha256: 'a'.repeat(64), bytes: 1 };
}
