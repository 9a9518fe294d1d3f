import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { pipelineJsonSchema } from '../engine/schema.js';
import { openStores } from '../activities/store/config.js';
import { CliError } from './errors.js';
import { collect, parseAssignments } from './values.js';
import { compileOrExit, validateCommand } from './commands/validate.js';
import { planCommand } from './commands/plan.js';
import { cancelCommand, listCommand, logsCommand, runCommand, statusCommand } from './commands/runs.js';
import { decideCommand } from './commands/decide.js';
import { execCommand } from './commands/exec.js';
import { demoCommand, devCommand } from './commands/server.js';
import { reviewDecideCommand, reviewExportCommand } from './commands/review.js';
import type { ReviewPageOptions } from './commands/review-page.js';
import type { ServeBaselineOptions } from './commands/serve-baseline.js';

// The review page (hono, esbuild) and the baseline (onnxruntime) load only for their commands.
const reviewPage = () => import('./commands/review-page.js');

const setOption = () => new Option('--set <key=value>', 'override a param (repeatable)').argParser(collect).default([]);
const port = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a port number');
  return n;
};

export function buildProgram(): Command {
  const program = new Command('twinflow')
    .description('Declarative ML pipelines on Temporal: validate, plan, run, approve, retry only what failed.')
    .option('--debug', 'show stack traces')
    // Options after a subcommand belong to it: `review serve --port` must not be taken by `review --port`.
    .enablePositionalOptions()
    // Usage errors throw (main exits 2 for them, as for an unknown --set) instead of exiting 1 inside commander.
    .exitOverride()
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });

  program.command('validate').argument('<file>').description('check a pipeline; problems print as FILE:LINE:COL')
    .addOption(setOption())
    .action((file: string, o: { set: string[] }) => validateCommand(file, { set: parseAssignments(o.set, '--set') }));

  program.command('plan').argument('<file>').description('the compiled DAG in order, with what is cached and what will run')
    .addOption(setOption()).option('--json', 'machine-readable output')
    .action((file: string, o: { set: string[]; json?: boolean }) => planCommand(compileOrExit(file, parseAssignments(o.set, '--set')), o));

  program.command('run').argument('<file>').description('validate, then submit the pipeline; prints the run id')
    .addOption(setOption()).option('--wait', 'follow the run until it ends').option('--json', 'print {"runId": ...}')
    .option('--no-cache', 'run every stage even when its result is cached')
    .action((file: string, o: { set: string[]; wait?: boolean; json?: boolean; cache: boolean }) =>
      runCommand(compileOrExit(file, parseAssignments(o.set, '--set')), { wait: o.wait, json: o.json, noCache: !o.cache }));

  program.command('status').argument('<run>').description('stage table of a run')
    .option('--json', 'machine-readable output').option('--watch', 'follow until the run ends')
    .action((run: string, o: { json?: boolean; watch?: boolean }) => statusCommand(run, o));

  program.command('list').description('recent runs').option('--json').option('--limit <n>', 'most runs to list', (v) => Number(v), 20)
    .action((o: { json?: boolean; limit: number }) => listCommand(o));

  for (const kind of ['approve', 'reject', 'skip'] as const) {
    program.command(kind).argument('<run>').argument('<stage>')
      .description({ approve: 'approve a waiting approval stage', reject: 'reject a waiting approval stage (it fails)', skip: 'skip a failed or waiting stage' }[kind])
      .option('--note <text>', kind === 'reject' ? 'why (required)' : 'a note kept in the run\'s history')
      .option('--as <name>', 'who decides (default $TWINFLOW_USER or your login)')
      .action(async (run: string, stage: string, o: { note?: string; as?: string }) => { await decideCommand(kind, run, stage, o); });
  }

  program.command('retry').argument('<run>').argument('<stage>').description('run a failed stage again, optionally with changed inputs')
    .option('--set <key=value>', 'change one of the stage\'s `with` inputs (repeatable)', collect, [])
    .option('--note <text>').option('--as <name>')
    .action(async (run: string, stage: string, o: { set: string[]; note?: string; as?: string }) => {
      await decideCommand('retry', run, stage, { ...o, set: parseAssignments(o.set, '--set') });
    });

  program.command('cancel').argument('<run>').description('cancel a run; running stages are killed')
    .option('--no-wait', 'return without waiting for the run to stop')
    .action((run: string, o: { wait: boolean }) => cancelCommand(run, o));

  program.command('logs').argument('<run>').argument('<stage>').description('a stage\'s log (all attempts)')
    .action((run: string, stage: string) => logsCommand(run, stage));

  program.command('workers').description('live workers on each twinflow queue (workflows, cpu, gpu, ...) and the stages each one runs now')
    .option('--queue <name>', 'also show this queue; cpu, gpu and the queues of running stages always show (repeatable)', collect, [])
    .option('--json', 'machine-readable output')
    .action((o: { queue: string[]; json?: boolean }) => import('./commands/workers.js').then((m) => m.workersCommand(o)));

  program.command('schema').description('JSON Schema of pipeline files, for editors')
    .action(() => console.log(JSON.stringify(pipelineJsonSchema(), null, 2)));

  program.command('exec').argument('<kind>').description('run one stage kind in this process, without a server')
    .option('--with <key=value>', 'an input (repeatable)', collect, []).option('--json', 'print only the outputs as JSON')
    .action((kind: string, o: { with: string[]; json?: boolean }) => execCommand(kind, parseAssignments(o.with, '--with'), o));

  program.command('dev').description('embedded Temporal dev server + Web UI + a worker, until Ctrl-C')
    .option('--port <n>', 'gRPC port', port, 7233).option('--ui-port <n>', 'Web UI port (default port+1000)', port)
    .option('--headless', 'no Web UI')
    .option('--review-port <n>', 'review page port (default 7300, or a free one)', port).option('--no-review', 'no review page')
    .action((o: { port: number; uiPort?: number; headless?: boolean; reviewPort?: number; review: boolean }) => devCommand(o));

  program.command('demo').argument('[file]', 'pipeline to run', 'pipelines/demo.yaml')
    .description('run a pipeline end to end on a fresh embedded server (what `npm start` does)')
    .addOption(setOption())
    .option('--port <n>', 'gRPC port (default 7233, or a free one)', port).option('--runs <n>', 'how many times (the second shows cache hits)', (v) => Number(v), 2)
    .action((file: string, o: { set: string[]; port?: number; runs: number }) => demoCommand(file, { ...o, set: parseAssignments(o.set, '--set') }));

  const pageOptions = (cmd: Command) => cmd
    .option('--host <address>', 'address to bind; anything but loopback requires a token', '127.0.0.1')
    .option('--port <n>', 'HTTP port (0: any free port)', (v) => (v === '0' ? 0 : port(v)), 7300)
    .option('--token <token>', 'one person\'s token (the person --as names); a token is generated and printed when binding off loopback')
    .option('--as <name>', 'whose --token it is; without tokens, the name the page suggests (default $TWINFLOW_USER or your login)')
    .option('--reviewer <name>', 'print a personal link for NAME, signed with $TWINFLOW_HOME/review-secret, valid across restarts (repeatable)', collect, [])
    .option('--reviewers <file>', 'YAML or JSON mapping each name to that person\'s token');
  const review = pageOptions(program.command('review').argument('[run]').argument('[stage]'))
    .description('open the review page at a run\'s review or approval (first waiting stage without STAGE); with --token, --reviewer or --reviewers each person signs in with their own link; subcommands: serve, export, decide')
    .action((run: string | undefined, stage: string | undefined, o: ReviewPageOptions) => {
      if (!run) throw new CliError('which run? `twinflow review RUN [STAGE]`, or `twinflow review serve` for every run', 'list runs with `twinflow list`', 2);
      return reviewPage().then((m) => m.reviewOpenCommand(run, stage, o));
    });
  pageOptions(review.command('serve')).description('serve the review page for every run until Ctrl-C')
    .action((o: ReviewPageOptions) => reviewPage().then((m) => m.reviewServeCommand(o)));
  review.command('export').argument('<run>').argument('<stage>').description('write a review\'s decisions and audit as JSONL (open or closed)')
    .option('--decisions <file>', 'where the decisions go (default STAGE.decisions.jsonl)').option('--audit <file>', 'where the audit goes (default STAGE.audit.jsonl)')
    .action((run: string, stage: string, o: { decisions?: string; audit?: string }) => reviewExportCommand(run, stage, o));
  review.command('decide').argument('<run>').argument('<stage>').description('send decisions from a JSONL file: {"id", "choice"} or {"id", "undo": true}, optional "note" and "by"')
    .requiredOption('--file <path>', 'JSONL of decisions').option('--as <name>', 'who decides lines without "by" (default $TWINFLOW_USER or your login)')
    .option('--batch <n>', 'decisions per update (at most 1000)', (v) => Number(v), 500)
    .action((run: string, stage: string, o: { file: string; as?: string; batch: number }) => reviewDecideCommand(run, stage, o));

  program.command('serve-baseline').description('the FGVQA embedding baseline (image cosine vs a threshold) as an OpenAI-compatible chat endpoint')
    .option('--host <address>', 'address to bind', '127.0.0.1').option('--port <n>', 'HTTP port (0: any free port)', (v) => (v === '0' ? 0 : port(v)), 8000)
    .option('--model <onnx>', 'image encoder (with its .preprocess.json beside it)', 'models/mobilenet_v2_mid.onnx')
    .option('--threshold <cosine>', 'answer yes from this cosine up', (v) => Number(v))
    .option('--calibrate <queries.jsonl>', 'choose the threshold on labelled pair queries (fgvqa/build output)')
    .action((o: ServeBaselineOptions) => import('./commands/serve-baseline.js').then((m) => m.serveBaselineCommand(o)));

  program.command('pull').argument('<artifact>').argument('<dest>')
    .description('copy an artifact from the store to this machine: artifact:sha256:DIGEST or RUN/STAGE/OUTPUT; a folder artifact (a dataset) becomes the folder DEST')
    .action((artifact: string, dest: string) => import('./commands/pull.js').then((m) => m.pullCommand(artifact, dest)));

  program.command('cache').description('the stage cache (under $TWINFLOW_HOME, or with the store TWINFLOW_STORE names)')
    .command('clear').description('remove every cache entry')
    .action(async () => console.log(`removed ${await openStores().cache.clear()} cache entries`));

  // `--debug` is read from argv by main(); every subcommand accepts it where people type it, at the end.
  const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];
  for (const c of everyCommand(program).slice(1)) c.addOption(new Option('--debug', 'show stack traces').hideHelp());
  return program;
}

/** Exit codes: 0 done, 1 the work failed, 2 the command was wrong (usage, unknown run or stage, bad input). */
export async function main(argv: string[]): Promise<void> {
  // `twinflow list | head`: a reader that goes away early is not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the problem (and the help) already.
      process.exitCode = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code) ? 0 : 2;
      return;
    }
    const debug = argv.includes('--debug');
    if (err instanceof CliError) {
      process.stderr.write(`error: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`);
      if (debug) process.stderr.write(`${err.stack}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.stderr.write(debug ? `${(err as Error).stack}\n` : 'hint: run again with --debug for details\n');
    process.exitCode = 1;
  }
}

