import { spawn } from 'node:child_process';
import { ArtifactStore } from '../../activities/artifact-store.js';
import { homeLayout } from '../../activities/home.js';
import { reviewStage, runStatus, ReviewRequestError } from '../../review/queue-client.js';
import { startReviewServer, type ReviewServer } from '../../review/server.js';
import { connect, type Session } from '../client.js';
import { CliError } from '../errors.js';
import { whoami } from '../identity.js';

export interface ReviewPageOptions {
  /** @default 127.0.0.1 */
  host: string;
  /** @default 7300 */
  port: number;
  token?: string;
  as?: string;
}

/** The review page on an open session (what `twinflow dev` embeds). */
export async function startReviewPage(session: Session, opts: ReviewPageOptions): Promise<ReviewServer> {
  try {
    return await startReviewServer({
      session, store: new ArtifactStore(homeLayout().artifactsDir), host: opts.host, port: opts.port, defaultUser: whoami(opts.as),
      ...(opts.token ? { token: opts.token } : {}),
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(`port ${opts.port} is in use`, 'pick another with --review-port / --port');
    throw err;
  }
}

/** `twinflow review serve`: the page for every run, until Ctrl-C. */
export async function reviewServeCommand(opts: ReviewPageOptions): Promise<void> {
  await serveUntilStopped(opts, '');
}

/** `twinflow review RUN [STAGE]`: the page opened at one run's review or approval (the first waiting one without STAGE). */
export async function reviewOpenCommand(runId: string, stage: string | undefined, opts: ReviewPageOptions): Promise<void> {
  const session = await connect();
  let target: string | undefined;
  try {
    const run = await runStatus(session, runId);
    target = stage ?? run.order.find((id) => run.stages[id]!.state === 'waiting');
    if (!target) throw new CliError(`run ${runId} has no stage waiting for people`, `its stages: ${run.order.join(', ')}`);
    if (!run.stages[target]) throw new CliError(`run ${runId} has no stage ${target}`, `its stages: ${run.order.join(', ')}`, 2);
    if (run.stages[target]!.uses !== 'core/approval') reviewStage(run, target);
  } catch (err) {
    if (err instanceof ReviewRequestError) throw new CliError(err.message, undefined, err.kind === 'invalid' ? 2 : 1);
    throw err;
  } finally {
    await session.close();
  }
  await serveUntilStopped(opts, `#/runs/${encodeURIComponent(runId)}/stages/${encodeURIComponent(target)}`);
}

async function serveUntilStopped(opts: ReviewPageOptions, fragment: string): Promise<void> {
  const session = await connect();
  const server = await startReviewPage(session, opts);
  const url = `${server.openUrl}${fragment}`;
  console.log(`review page: ${url}`);
  if (server.token) console.log(`token: ${server.token}  (every request needs it; the link above carries it)`);
  console.log('Ctrl-C stops the page; decisions are kept by the run.');
  if (process.env.DISPLAY || process.platform === 'darwin') {
    spawn(process.platform === 'darwin' ? 'open' : 'xdg-open', [url], { stdio: 'ignore', detached: true }).on('error', () => undefined).unref();
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await session.close();
}
