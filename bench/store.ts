/**
 * Benchmark store: moving artifacts through ArtifactStore with an S3 remote vs the AWS CLI,
 * on the same s3proxy server (test/support/s3-server.ts), both directions, median of
 * BENCH_STORE_REPS repetitions (default 3):
 *   (a) one large file        twinflow putFile / file()   vs  aws s3 cp
 *   (b) many ~100 KB images   putFile / file() of each, 16 at once  vs  aws s3 sync
 * Downloads go into a store with an empty local folder (a fresh host), so every byte crosses
 * the wire and is checked against its digest. Target: twinflow/awscli <= 1.0x.
 *
 *   npm run bench -- store        (BENCH_STORE_MB=1024 by default; BENCH_STORE_MB=64 BENCH_STORE_REPS=1 for a quick run)
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ArtifactStore } from '../activities/artifact-store.js';
import { mapBounded } from '../activities/data/concurrency.js';
import { sha256File } from '../activities/host-files.js';
import { S3Objects } from '../activities/store/s3-objects.js';
import type { ArtifactRef } from '../engine/types.js';
import { randomFile, startS3Server, type S3Server } from '../test/support/s3-server.js';

const MB = Number(process.env.BENCH_STORE_MB ?? 1024);
const REPS = Number(process.env.BENCH_STORE_REPS ?? 3);
const SMALL_BYTES = 100 * 1024;
const CONCURRENCY = 16;

interface Case {
  name: string;
  twinflow(rep: number): Promise<number>;
  aws(rep: number): Promise<number>;
}

export async function storeBench(): Promise<string[]> {
  const aws = awsCli();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-bench-store-'));
  const server = await startS3Server({ bucket: 'twinflow-bench', prefix: 'twinflow' });
  const count = Math.max(10, Math.round((MB * 2 ** 20) / SMALL_BYTES));
  console.log(`store: ${MB} MB as one file and as ${count} files of ~${SMALL_BYTES / 1024} KB, ${REPS} repetitions, s3proxy at ${server.endpoint}\n`);
  try {
    const data = await makeData(root, count);
    const side = sides(server, root, aws);
    await side.warmUp(data);
    const cases = caseList(server, root, side, data);
    const times = cases.map(() => ({ twinflow: [] as number[], aws: [] as number[] }));
    for (let rep = 0; rep < REPS; rep++) {
      for (const [i, c] of cases.entries()) {
        times[i]!.twinflow.push(await c.twinflow(rep));
        times[i]!.aws.push(await c.aws(rep));
        console.log(`  rep ${rep + 1} ${c.name}: twinflow ${times[i]!.twinflow.at(-1)!.toFixed(2)} s, aws cli ${times[i]!.aws.at(-1)!.toFixed(2)} s`);
      }
      await side.clear();
    }
    const rows = cases.map((c, i) => row(c.name, median(times[i]!.twinflow), median(times[i]!.aws)));
    return [`medians over ${REPS} repetitions:`, ...rows, '', 'where twinflow\'s time goes (S3Objects alone, once):', ...(await side.breakdown(data))];
  } finally {
    await server.stop();
    await fs.rm(root, { recursive: true, force: true });
  }
}

/** The four transfers; each download reads what the same side uploaded in the same repetition. */
function caseList(server: S3Server, root: string, side: ReturnType<typeof sides>, data: Data): Case[] {
  let bigRefs: ArtifactRef[] = [];
  let smallRefs: ArtifactRef[] = [];
  const at = (key: string, rep: number) => `s3://${server.bucket}/awscli/${rep}/${key}`;
  return [{
    name: '(a) one file, upload',
    twinflow: async (rep) => ({ refs: bigRefs } = await side.twinflowUp([data.big], `big-${rep}`)).seconds,
    aws: (rep) => side.aws(['s3', 'cp', data.big, at('big.bin', rep)]),
  }, {
    name: '(a) one file, download',
    twinflow: (rep) => side.twinflowDown(bigRefs, `big-${rep}`),
    aws: (rep) => side.aws(['s3', 'cp', at('big.bin', rep), path.join(root, `aws-big-${rep}.bin`)]),
  }, {
    name: `(b) ${data.small.length} files, upload`,
    twinflow: async (rep) => ({ refs: smallRefs } = await side.twinflowUp(data.small, `small-${rep}`)).seconds,
    aws: (rep) => side.aws(['s3', 'sync', data.smallDir, at('small/', rep)]),
  }, {
    name: `(b) ${data.small.length} files, download`,
    twinflow: (rep) => side.twinflowDown(smallRefs, `small-${rep}`),
    aws: (rep) => side.aws(['s3', 'sync', at('small/', rep), path.join(root, `aws-small-${rep}`)]),
  }];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const row = (name: string, twinflow: number, awscli: number) =>
  `${name.padEnd(28)} twinflow ${twinflow.toFixed(2).padStart(7)} s   aws cli ${awscli.toFixed(2).padStart(7)} s   ratio ${(twinflow / awscli).toFixed(2)}x   (target <= 1.0x)`;

interface Data {
  big: string;
  smallDir: string;
  small: string[];
}

async function makeData(root: string, count: number): Promise<Data> {
  const big = await randomFile(path.join(root, 'big.bin'), MB * 2 ** 20);
  const smallDir = path.join(root, 'images');
  await fs.mkdir(smallDir);
  const small = Array.from({ length: count }, (_, i) => path.join(smallDir, `img-${String(i).padStart(5, '0')}.jpg`));
  await mapBounded(small, CONCURRENCY, (file) => fs.writeFile(file, randomBytes(SMALL_BYTES)));
  return { big, smallDir, small };
}

/** The two sides, each timed from a cold start of its own: a fresh store (a new host), a fresh `aws` process. */
function sides(server: S3Server, root: string, awsBin: string) {
  const remote = () => new S3Objects({ url: server.env.TWINFLOW_STORE!, env: server.env });
  const awsEnv = awsEnvironment(server, root);
  const timed = async (fn: () => Promise<unknown>) => {
    const t = performance.now();
    await fn();
    return (performance.now() - t) / 1000;
  };
  const withRemote = async <T>(fn: (objects: S3Objects) => Promise<T>): Promise<T> => {
    const objects = remote();
    try {
      return await fn(objects);
    } finally {
      objects.close();
    }
  };
  return {
    /** The JVM compiles s3proxy's hot paths on the first transfers: run some of each kind before timing. */
    warmUp: (data: Data) => withRemote(async (objects) => {
      const warm = await randomFile(path.join(root, 'warm.bin'), 64 * 2 ** 20);
      for (let i = 0; i < 3; i++) await objects.putFile(`warm/big-${i}`, warm);
      await objects.getFile('warm/big-0', warm);
      await mapBounded(data.small.slice(0, 500), CONCURRENCY, (f, i) => objects.putFile(`warm/small-${i}`, f));
      await fs.rm(warm);
    }),
    twinflowUp: (files: string[], name: string) => withRemote(async (objects) => {
      const store = new ArtifactStore({ local: path.join(root, `up-${name}`), remote: objects });
      let refs: ArtifactRef[] = [];
      const seconds = await timed(async () => (refs = await mapBounded(files, CONCURRENCY, (f) => store.putFile(f))));
      return { refs, seconds };
    }),
    twinflowDown: (refs: ArtifactRef[], name: string) => withRemote((objects) => {
      const store = new ArtifactStore({ local: path.join(root, `down-${name}`), remote: objects });
      return timed(() => mapBounded(refs, CONCURRENCY, (r) => store.file(r)));
    }),
    aws: (args: string[]) => timed(() => run(awsBin, ['--endpoint-url', server.endpoint, '--only-show-errors', ...args], awsEnv)),
    /** Objects and local copies of a repetition go, so the disk holds one at a time. */
    async clear() {
      for (const prefix of ['twinflow', 'awscli']) await fs.rm(path.join(server.basedir, server.bucket, prefix), { recursive: true, force: true });
      for (const name of await fs.readdir(root)) if (/^(up|down|aws)-/.test(name)) await fs.rm(path.join(root, name), { recursive: true, force: true });
    },
    /** The part of twinflow's time that is not the object store's: the sha256 that names a file before it goes up. */
    breakdown: (data: Data) => withRemote(async (objects) => {
      const hash = await timed(() => sha256File(data.big));
      const put = await timed(() => objects.putFile('alone/big', data.big));
      const get = await timed(() => objects.getFile('alone/big', path.join(root, 'down-alone')));
      const puts = await timed(() => mapBounded(data.small, CONCURRENCY, (f, i) => objects.putFile(`alone/small/${i}`, f)));
      await fs.rm(path.join(root, 'down-alone'));
      return [
        `(a) sha256 of the file ${hash.toFixed(2)} s (before the upload; a download hashes as it writes), putFile ${put.toFixed(2)} s, getFile ${get.toFixed(2)} s`,
        `(b) putFile of each ${puts.toFixed(2)} s (twinflow's are conditional puts, no HEAD first)`,
      ].map((l) => `  ${l}`);
    }),
  };
}

/** The AWS CLI's own defaults (10 requests at once, 8 MB parts), told the server's address style and credentials. */
function awsEnvironment(server: S3Server, root: string): NodeJS.ProcessEnv {
  const config = path.join(root, 'aws-config');
  // Path-style like twinflow's client for custom endpoints, and the same checksum policy (none
  // beyond what S3 requires), so both sides do the same work per byte.
  writeFileSync(config, '[default]\nrequest_checksum_calculation = when_required\nresponse_checksum_validation = when_required\ns3 =\n  addressing_style = path\n');
  const { AWS_PROFILE: _p, ...rest } = process.env;
  return { ...rest, ...server.env, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} ${args.join(' ')} exited ${code}`))));
  });
}

/** The AWS CLI from .venv, installed on first use (bench/python/store-requirements.txt). */
function awsCli(): string {
  const bin = path.resolve('.venv/bin/aws');
  if (!existsSync(bin)) {
    console.log('bench: installing the AWS CLI into .venv (bench/python/store-requirements.txt)');
    execFileSync(path.resolve('.venv/bin/python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', 'bench/python/store-requirements.txt'], { stdio: 'inherit' });
  }
  return bin;
}
