import { describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Session } from '../../cli/client.js';
import { submitPipeline } from '../../cli/submit.js';
import { checkPipelineText } from '../../engine/compile.js';

/**
 * Submitting where twinflow's search attributes are missing, against a fake cluster:
 * - the operator service registers them: the run starts with them, and one note says so
 * - the operator service is refused (Temporal Cloud: PermissionDenied, Unimplemented): the
 *   run starts without them, and the note gives the tcld and temporal operator command lines
 */

const pipeline = checkPipelineText('name: hello\nstages:\n  hi: { uses: core/noop }\n', 'hello.yaml').pipeline!;
const missing = () => Object.assign(new Error('Failed to start Workflow'), {
  cause: Object.assign(new Error('3 INVALID_ARGUMENT: Namespace ns.acct has no mapping defined for search attribute TwinflowPipeline'), { code: 3 }),
});

/** A cluster without the attributes; `register` is what its operator service does when asked. */
function fakeCluster(register: () => Promise<void>) {
  let known = false;
  const starts: Array<{ searchAttributes: boolean }> = [];
  const client = {
    options: { namespace: 'ns.acct' },
    workflow: {
      start: async (_type: string, opts: { typedSearchAttributes?: unknown[] }) => {
        if (opts.typedSearchAttributes && !known) throw missing();
        starts.push({ searchAttributes: Boolean(opts.typedSearchAttributes) });
      },
    },
    connection: {
      operatorService: {
        addSearchAttributes: async () => {
          // ALREADY_EXISTS: another submit registered them, so the cluster knows them now.
          await register().catch((err: Error) => { known = /already exists/.test(err.message); throw err; });
          known = true;
        },
      },
    },
  };
  const session: Session = { client: client as unknown as Client, address: 'ns.acct.tmprl.cloud:7233', close: async () => undefined };
  return { session, starts };
}

async function submit(register: () => Promise<void>) {
  const { session, starts } = fakeCluster(register);
  const notes: string[] = [];
  const runId = await submitPipeline(session, pipeline, { runId: 'hello-1', onNote: (t) => notes.push(t) });
  return { runId, starts, notes };
}

const refusal = (message: string, code: number) => async () => { throw Object.assign(new Error(message), { code }); };

describe('search attributes on first use', () => {
  it('registers them where the operator service allows it, starts the run with them and says so once', async () => {
    const { runId, starts, notes } = await submit(async () => undefined);
    expect(runId).toBe('hello-1');
    expect(starts).toEqual([{ searchAttributes: true }]);
    expect(notes).toEqual(["registered twinflow's search attributes (TwinflowPipeline, TwinflowState) in namespace ns.acct"]);
  });

  it.each([
    ['PermissionDenied', refusal('7 PERMISSION_DENIED: Request unauthorized.', 7)],
    ['Unimplemented', refusal('12 UNIMPLEMENTED: unknown service temporal.api.operatorservice.v1.OperatorService', 12)],
  ])('starts the run without them when the operator service answers %s, and says how to add them', async (_name, register) => {
    const { starts, notes } = await submit(register);
    expect(starts).toEqual([{ searchAttributes: false }]);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain('are not registered in namespace ns.acct');
    expect(notes[0]).toContain('`tcld namespace search-attributes add --namespace ns.acct --search-attribute TwinflowPipeline=Keyword --search-attribute TwinflowState=Keyword`');
    expect(notes[0]).toContain('temporal operator search-attribute create --namespace ns.acct --name TwinflowPipeline --type Keyword && ' +
      'temporal operator search-attribute create --namespace ns.acct --name TwinflowState --type Keyword');
  });

  it('takes attributes another submit registered a moment ago as registered', async () => {
    const { starts, notes } = await submit(refusal('6 ALREADY_EXISTS: Search attribute TwinflowPipeline already exists.', 6));
    expect(starts).toEqual([{ searchAttributes: true }]);
    expect(notes[0]).toMatch(/^registered/);
  });
});
