import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../activities/index.js';
import { homeLayout, type HomeLayout } from '../../activities/home.js';
import type { CacheLookupResult, StageActivityInput, StageActivityResult } from '../../activities/stage-io.js';
import { resolveInputs } from '../../engine/expressions.js';
import { stageCacheKey } from '../../engine/cache-key.js';
import { isAlive } from '../support/processes.js';
import { failure } from '../support/activity-results.js';

let home: HomeLayout;
let acts: ReturnType<typeof createActivities>;
beforeAll(async () => {
  home = homeLayout(await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-shell-')));
  acts = createActivities({ home });
});
afterAll(() => fs.rm(home.root, { recursive: true, force: true }));

function input(run: string, extra: Partial<StageActivityInput> = {}): StageActivityInput {
  return { runId: 'r1', stageId: 's1', uses: 'core/shell', kindVersion: '1', with: { run }, shellEnv: {}, ...extra };
}

const exec = (i: StageActivityInput): Promise<StageActivityResult> => new MockActivityEnvironment({ attempt: 1 }).run(acts['core/shell'], i) as Promise<StageActivityResult>;
const lookup = (run: string) =>
  new MockActivityEnvironment().run(acts.lookupCache, { uses: 'core/shell', kindVersion: '1', inputs: { run }, shellEnv: {} }) as Promise<CacheLookupResult>;

describe('core/shell activity', () => {
  it('takes the last stdout line as outputs when it is a JSON object', async () => {
    const result = await exec(input('echo hello; echo \'{"n": 3, "s": "x"}\''));
    expect(result.outputs).toEqual({ n: 3, s: 'x' });
    expect(await fs.readFile(result.log!, 'utf8')).toContain('hello');
  });

  it('has no outputs when the last line is not a JSON object', async () => {
    expect((await exec(input('echo \'{"a": 1}\'; echo done'))).outputs).toEqual({});
    expect((await exec(input('echo "{not json"'))).outputs).toEqual({});
  });

  it('never runs text that came from an expression, whatever it contains', async () => {
    const marker = path.join(home.root, 'pwned');
    const title = `$(touch ${marker}); "\`touch ${marker}\`" ' && touch ${marker} #`;
    const resolved = resolveInputs(
      { run: 'printf \'%s\' ${{ stages.source.outputs.title }} > "$TWINFLOW_STAGE_DIR/title.txt"; echo \'{"ok": true}\'' },
      { params: {}, stages: { source: { outputs: { title } } } },
      ['run'],
    );
    const result = await exec(input(String(resolved.with.run), { shellEnv: resolved.shellEnv, stageId: 'inject' }));
    expect(result.outputs).toEqual({ ok: true });
    await expect(fs.access(marker)).rejects.toThrow();
    expect(await fs.readFile(path.join(home.stageDir('r1', 'inject'), 'title.txt'), 'utf8')).toBe(title);
  });

  it('fails with the exit code and the last 50 lines of output', async () => {
    const err = await exec(input('for i in $(seq 1 80); do echo "line $i"; done; echo oops >&2; exit 7')).catch((e) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.message).toContain('exited with code 7');
    const details = err.details[0];
    expect(details.exitCode).toBe(7);
    expect(details.logTail).toHaveLength(50);
    expect(details.logTail.at(-1)).toBe('oops');
    expect(details.logTail[0]).toBe('line 32');
  });

  it('refuses outputs too large for history, with what to do instead', async () => {
    const err = await exec(input('python3 -c "import json; print(json.dumps({\'x\': \'a\' * 70000}))"')).catch((e) => e);
    expect(err.type).toBe('OutputsTooLarge');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/write bulk data to a file/i);
  });

  it('rejects inputs that do not fit core/shell without retrying', async () => {
    const err = await failure(exec({ ...input('x'), with: { run: 'echo', bogus: 1 } }));
    expect(err.type).toBe('InvalidStageInput');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toContain('bogus');
  });

  it('reports progress lines as heartbeats', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    await env.run(acts['core/shell'], input('echo "::progress::3/10 images"; sleep 1.5; echo ok'));
    expect(beats).toContainEqual({ progress: { done: 3, total: 10, message: 'images' } });
  });

  it('kills the whole process group when the stage is cancelled', async () => {
    const pidFile = path.join(home.root, 'child.pid');
    const env = new MockActivityEnvironment({ attempt: 1 });
    const running = env.run(acts['core/shell'], input(`sleep 60 & echo $! > ${pidFile}; wait`));
    let pid = 0;
    while (!pid) {
      pid = Number((await fs.readFile(pidFile, 'utf8').catch(() => '')).trim());
      await new Promise((r) => setTimeout(r, 50));
    }
    env.cancel();
    await expect(running).rejects.toThrow();
    await expect.poll(() => isAlive(pid), { timeout: 5_000 }).toBe(false);
  });

  it('writes a cache entry only when a cacheable stage succeeds', async () => {
    const ok = input('echo \'{"v": 1}\'', { cacheKey: stageCacheKey({ uses: 'core/shell', kindVersion: '1', inputs: { run: 'ok' }, shellEnv: {} }) });
    await exec(ok);
    const hit = await lookup('ok');
    expect(hit.hit?.outputs).toEqual({ v: 1 });
    const badKey = stageCacheKey({ uses: 'core/shell', kindVersion: '1', inputs: { run: 'bad' }, shellEnv: {} });
    await exec(input('exit 1', { cacheKey: badKey })).catch(() => undefined);
    const miss = await lookup('bad');
    expect(miss.hit).toBeUndefined();
  });

  it('survives a line of 600 MB on stdout: the log notes its length and the outputs line still counts', async () => {
    const result = await exec(input('head -c 600000000 /dev/zero | tr "\\0" x; echo; echo \'{"ok": true}\''));
    expect(result.outputs).toEqual({ ok: true });
    expect(await fs.readFile(result.log!, 'utf8')).toContain('[twinflow: a line of 600000000 bytes was left out of the log]');
  });
});
