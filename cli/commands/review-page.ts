import { spawn } from 'node:child_process';
import { openStores } from '../../activities/store/config.js';
import { reviewStage, runStatus, ReviewRequestError } from '../../review/queue-client.js';
import { startReviewServer, type ReviewServer } from '../../review/server.js';
import { PeopleError, personName, readReviewersFile, reviewSecret, signedToken, type Person } from '../../review/people.js';
import { connect, type Session } from '../client.js';
import { CliError } from '../errors.js';
import { whoami } from '../identity.js';

export interface ReviewPageOptions {
  /** @default 127.0.0.1 */
  host: string;
  /** @default 7300 */
  port: number;
  /** One person's token: the person `as` names. */
  token?: string;
  /** Whose `token` is; in local mode the name the page suggests. @default $TWINFLOW_USER or the login name */
  as?: string;
  /** People who each get a link signed with $TWINFLOW_HOME/review-secret. */
  reviewer?: string[];
  /** A YAML or JSON file mapping names to tokens. */
  reviewers?: string;
}

/** Everyone the options give a token: `--token` (for `--as`), `--reviewer` (signed links), `--reviewers FILE`. */
export async function pagePeople(opts: ReviewPageOptions): Promise<Person[]> {
  const people: Person[] = [];
  if (opts.token) people.push({ name: personName(whoami(opts.as), '--as'), token: opts.token });
  if (opts.reviewer?.length) {
    const secret = await reviewSecret();
    for (const raw of opts.reviewer) {
      const name = personName(raw, `--reviewer ${JSON.stringify(raw)}`);
      people.push({ name, token: signedToken(secret, name) });
    }
  }
  if (opts.reviewers) people.push(...(await readReviewersFile(opts.reviewers)));
  return people;
}

function storesForPage() {
  const { artifacts, logs } = openStores();
  return { store: artifacts, logs };
}

/** The review page on an open session (what `twinflow dev` embeds). */
export async function startReviewPage(session: Session, opts: ReviewPageOptions): Promise<ReviewServer> {
  try {
    return await startReviewServer({
      session, ...storesForPage(), host: opts.host, port: opts.port, defaultUser: whoami(opts.as), people: await pagePeople(opts),
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new CliError(`port ${opts.port} is in use`, 'pick another with --review-port / --port');
    if (err instanceof PeopleError) throw new CliError(err.message, 'see `twinflow review --help` for --token, --reviewer and --reviewers', 2);
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
  const server = await startReviewPage(session, opts).catch(async (err) => { await session.close(); throw err; });
  const url = `${server.openUrl}${fragment}`;
  if (!server.links.length) {
    console.log(`review page: ${url}`);
    console.log('local mode: anyone on this host may use it; names are typed on the page and recorded as unauthenticated (--reviewer NAME gives each person a link)');
  }
  for (const link of server.links) console.log(`review page for ${link.name}: ${link.url}${fragment}`);
  if (server.links.length) console.log('each link signs in its person: send it to them alone');
  console.log('Ctrl-C stops the page; decisions are kept by the run.');
  // Only the one person's own link opens here; with several, each person opens theirs.
  if ((process.env.DISPLAY || process.platform === 'darwin') && server.links.length <= 1) {
    spawn(process.platform === 'darwin' ? 'open' : 'xdg-open', [url], { stdio: 'ignore', detached: true }).on('error', () => undefined).unref();
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await session.close();
}
