/**
 * The `twinflow` command as a person uses it, against a real dev server:
 * - validate: exit 0 with a summary; exit 2 with FILE:LINE:COL lines and no stack trace
 * - run refuses an invalid pipeline and submits nothing
 * - run --json, status --json, approve with a note, status shows who approved
 * - a failing stage: status says how to go on, retry --set checks the input name, skip
 * - plan shows cache hits after a run; exec runs a kind without a server
 * - usage errors exit 2; a closed pipe ends quietly; a cancelled run is listed as cancelled
 *   and suggests nothing; exec reads values as YAML; plan resolves params it can; control
 *   characters from a run reach the terminal as escapes
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.js';
import { runTwinflow, type CliResult } from '../support/twinflow-cli.js';

const repo = path.resolve(import.meta.dirname, '../..');
let h: Harness;
let dir: string;

beforeAll(async () => {
  h = await startHarness();
  dir = path.join(h.home.root, 'pipelines');
  await fs.mkdir(dir, { recursive: true });
});
afterAll(async () => h?.stop());

const twinflow = (...args: string[]): Promise<CliResult> => runTwinflow({ address: h.address, home: h.home.root }, ...args);

async function file(name: string, text: string): Promise<string> {
  const p = path.join(dir, name);
  await fs.writeFile(p, text);
  return p;
}

describe('twinflow CLI', () => {
  it('validates a good pipeline with a one-line summary', async () => {
    const r = await twinflow('validate', 'pipelines/example.yaml');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pipeline example is valid: 4 stages/);
  });

  it('reports every problem as FILE:LINE:COL with exit code 2 and no stack trace', async () => {
    const bad = await file('bad.yaml', 'name: bad\nstages:\n  a:\n    uses: core/shel\n  b:\n    uses: core/shell\n    needs: [zz]\n    with: { run: x }\n');
    const r = await twinflow('validate', bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${bad}:4:\\d+: .*core/shel.*did you mean core/shell`));
    expect(r.stderr).toMatch(new RegExp(`${bad}:7:\\d+: .*zz`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('submits nothing when the pipeline is invalid', async () => {
    const bad = await file('cycle.yaml', 'name: cyc\nstages:\n  a: { uses: core/noop, needs: [b] }\n  b: { uses: core/noop, needs: [a] }\n');
    const r = await twinflow('run', bad, '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/a -> b -> a|b -> a -> b/);
    const list = await twinflow('list', '--json');
    expect(JSON.parse(list.stdout).map((x: { pipeline: string }) => x.pipeline)).not.toContain('cyc');
  });

  it('runs, waits at a gate, takes an approval with a note, and shows who approved', async () => {
    const run = await twinflow('run', 'pipelines/approval.yaml', '--json', '--set', 'release=v9');
    expect(run.code).toBe(0);
    const { runId } = JSON.parse(run.stdout);
    await h.waitFor(runId, 'the gate', (s) => s.stages.review!.state === 'waiting');
    const waiting = JSON.parse((await twinflow('status', runId, '--json')).stdout);
    expect(waiting.state).toBe('waiting');
    expect(waiting.stages.prepare.outputs).toEqual({ release: 'v9' });
    const approve = await twinflow('approve', runId, 'review', '--note', 'looks right');
    expect(approve.code).toBe(0);
    await h.result(runId);
    const done = JSON.parse((await twinflow('status', runId, '--json')).stdout);
    expect(done.state).toBe('succeeded');
    expect(done.stages.review.approval).toMatchObject({ decision: 'approved', by: 'tester', note: 'looks right' });
    const table = await twinflow('status', runId);
    expect(table.stdout).toContain('approved by tester');
    const again = await twinflow('approve', runId, 'review');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/has ended \(completed\); there is nothing left to approve/);
  });

  it('shows a failed stage with what to do, checks retry inputs, and retries it', async () => {
    const p = await file('fail.yaml', "name: failing\nstages:\n  step: { uses: core/shell, with: { run: 'echo broken; exit 4' } }\n");
    const { runId } = JSON.parse((await twinflow('run', p, '--json')).stdout);
    await h.waitFor(runId, 'step to fail', (s) => s.stages.step!.state === 'failed');
    const status = await twinflow('status', runId);
    expect(status.stdout).toContain('exited with code 4');
    expect(status.stdout).toContain(`npx twinflow retry ${runId} step`);
    const typo = await twinflow('retry', runId, 'step', '--set', 'rum=echo ok');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/no input rum; did you mean run/);
    const logs = await twinflow('logs', runId, 'step');
    expect(logs.stdout).toContain('broken');
    expect((await twinflow('retry', runId, 'step', '--set', 'run=echo fixed')).code).toBe(0);
    expect((await h.result(runId)).state).toBe('succeeded');
  });

  it('plans cache hits after a run and marks approvals as waiting for people', async () => {
    const p = await file('plan.yaml', `name: planned
params: { n: 2 }
stages:
  a: { uses: core/shell, cache: true, with: { run: 'echo "{\\"n\\": \${{ params.n }}}"' } }
  b: { uses: core/shell, cache: true, with: { run: 'echo \${{ stages.a.outputs.n }}' } }
  gate: { uses: core/approval, needs: [b] }
`);
    const before = JSON.parse((await twinflow('plan', p, '--json')).stdout);
    expect(before.stages.map((s: { verdict: string }) => s.verdict)).toEqual(['will run', 'will run', 'waits for people']);
    const { runId } = JSON.parse((await twinflow('run', p, '--json')).stdout);
    await h.waitFor(runId, 'the gate', (s) => s.stages.gate!.state === 'waiting');
    const after = JSON.parse((await twinflow('plan', p, '--json')).stdout);
    expect(after.stages.map((s: { verdict: string }) => s.verdict)).toEqual(['cached', 'cached', 'waits for people']);
    const changed = JSON.parse((await twinflow('plan', p, '--json', '--set', 'n=3')).stdout);
    expect(changed.stages[0].verdict).toBe('will run');
    expect(changed.stages[0].inputs.run).toContain('TWINFLOW_EXPR_0');
    expect((await twinflow('cancel', runId)).stdout).toMatch(/cancelled/);
  });

  it('runs one stage kind without a server', async () => {
    const r = await twinflow('exec', 'core/shell', '--with', 'run=echo \'{"x": 1}\'', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ x: 1 });
    const unknown = await twinflow('exec', 'core/shel');
    expect(unknown.stderr).toMatch(/did you mean core\/shell/);
  });

  it('prints a JSON Schema that matches the committed one', async () => {
    const r = await twinflow('schema');
    const committed = await fs.readFile(path.join(repo, 'schema/pipeline.schema.json'), 'utf8');
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(committed));
  });
});

describe('twinflow CLI on bad input', () => {
  it('exits 2 for an unknown flag, an unknown run and an unknown stage', async () => {
    expect((await twinflow('status', 'x', '--bogus')).code).toBe(2);
    const unknownRun = await twinflow('status', 'no-such-run');
    expect(unknownRun.code).toBe(2);
    expect(unknownRun.stderr).toContain('no run with id no-such-run');
    const { runId } = JSON.parse((await twinflow('run', 'pipelines/approval.yaml', '--json')).stdout) as { runId: string };
    await h.waitFor(runId, 'the gate', (s) => Object.values(s.stages).some((st) => st.state === 'waiting'));
    const unknownStage = await twinflow('approve', runId, 'no-such-stage');
    expect(unknownStage.code).toBe(2);
    expect(unknownStage.stderr).toContain('unknown stage no-such-stage');

    expect((await twinflow('cancel', runId)).code).toBe(0);
    const status = await twinflow('status', runId);
    expect(status.stdout).toMatch(/state CANCELLED/);
    expect(status.stdout).not.toMatch(/twinflow (retry|skip|approve)/);
    expect(status.stdout).toMatch(/never decided \(the run was cancelled\)/);
    const list = JSON.parse((await twinflow('list', '--json')).stdout) as Array<{ runId: string; status: string }>;
    expect(list.find((r) => r.runId === runId)?.status).toBe('cancelled');
  });

  it('ends quietly when the reader of its output goes away', async () => {
    const tsx = path.join(repo, 'node_modules/.bin/tsx');
    const { stdout, stderr } = await promisify(execFile)('bash', ['-c', `set -o pipefail; ${tsx} cli/main.ts schema | head -c 10`], { cwd: repo });
    expect(stdout).toHaveLength(10);
    expect(stderr).not.toMatch(/EPIPE|at /);
  });

  it('reads exec values as YAML scalars, so a wrong number is reported for what it is', async () => {
    const r = await twinflow('exec', 'fgvqa/build', '--with', 'source=cub', '--with', `root=${dir}`, '--with', 'pairs=1001');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/with\.pairs: .*multiple of 2/);
    expect(r.stderr).not.toMatch(/expected number, received string/);
  });

  it('plans with params resolved where the outputs of earlier stages are not known yet', async () => {
    const p = await file('partial.yaml', `name: partial
params: { n: 7, name: shoes }
stages:
  a: { uses: core/noop, with: { outputs: { x: 1 } } }
  b: { uses: core/noop, with: { outputs: { label: '\${{ params.name }}-\${{ stages.a.outputs.x }}', n: '\${{ params.n }}' } } }
`);
    const plan = JSON.parse((await twinflow('plan', p, '--json')).stdout) as { stages: Array<{ id: string; inputs: { outputs: Record<string, unknown> } }> };
    expect(plan.stages[1]!.inputs.outputs).toEqual({ label: 'shoes-${{ stages.a.outputs.x }}', n: 7 });
  });

  it('shows control characters from a run as escapes, never raw', async () => {
    const p = await file('esc.yaml', `name: esc
stages:
  boom: { uses: core/shell, with: { run: 'printf "\\\\033[2J\\\\033]0;owned\\\\007 boom\\\\n" >&2; exit 3' } }
`);
    const { runId } = JSON.parse((await twinflow('run', p, '--json')).stdout) as { runId: string };
    await h.waitFor(runId, 'the failure', (s) => s.stages.boom!.state === 'failed');
    const status = await twinflow('status', runId);
    expect(status.stdout).toContain('\\x1b[2J');
    expect(status.stdout).not.toMatch(/[\x1b\x07]/);
    await twinflow('cancel', runId);

    const gate = JSON.parse((await twinflow('run', 'pipelines/approval.yaml', '--json')).stdout) as { runId: string };
    const waiting = await h.waitFor(gate.runId, 'the gate', (s) => Object.values(s.stages).some((st) => st.state === 'waiting'));
    const stage = waiting.order.find((id) => waiting.stages[id]!.state === 'waiting')!;
    expect((await twinflow('approve', gate.runId, stage, '--as', 'ana\x1b[31m', '--note', 'ok\x07 fine\nsecond line')).code).toBe(0);
    const approved = (await h.status(gate.runId)).stages[stage]!.approval!;
    expect(approved).toMatchObject({ by: 'ana[31m', note: 'ok fine\nsecond line' });
    await twinflow('cancel', gate.runId);
  });
});
