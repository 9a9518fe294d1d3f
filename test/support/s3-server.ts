import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { killGroup } from '../../activities/process-groups.js';
import { freePort, WATCHED } from '../../cli/dev-server.js';
import { exited } from './worker-process.js';

const repo = path.resolve(import.meta.dirname, '../..');
const S3PROXY_JAR = process.env.S3PROXY_JAR ?? path.join(repo, '.venv/share/s3proxy/s3proxy-4.1.0-jar-with-dependencies.jar');

export interface S3ServerOptions {
  /** @default 'twinflow-test' */
  bucket?: string;
  /** Put into TWINFLOW_STORE after the bucket. @default '' */
  prefix?: string;
}

/** A running s3proxy with a filesystem backend: a real S3 server whose objects are files in `basedir`. */
export interface S3Server {
  endpoint: string;
  bucket: string;
  /** AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and TWINFLOW_STORE for this server. */
  env: Record<string, string>;
  /** The backend's folder: object `KEY` of the bucket is the file `basedir/BUCKET/KEY`. */
  basedir: string;
  /** SIGKILLs the server's process group (for fault tests); `restart()` brings it back. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and basedir. */
  restart(): Promise<void>;
  /** Ends the server's process group and removes its folder. */
  stop(): Promise<void>;
}

/**
 * Starts s3proxy (installed by `npm run setup`) on a free port, in its own process group
 * under the dev server's watchdog, so it never outlives the test process even if that one
 * is killed; waits until it answers and creates the bucket.
 */
export async function startS3Server(opts: S3ServerOptions = {}): Promise<S3Server> {
  if (!existsSync(S3PROXY_JAR)) throw new Error(`s3proxy is not installed at ${S3PROXY_JAR}: run npm run setup (needs Java 17)`);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'twinflow-s3-'));
  const basedir = path.join(root, 'data');
  await fs.mkdir(basedir);
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const identity = 'twinflow-test';
  const credential = randomUUID();
  const conf = path.join(root, 's3proxy.conf');
  await fs.writeFile(conf, [
    `s3proxy.endpoint=${endpoint}`,
    's3proxy.authorization=aws-v2-or-v4',
    `s3proxy.identity=${identity}`,
    `s3proxy.credential=${credential}`,
    'jclouds.provider=filesystem',
    `jclouds.filesystem.basedir=${basedir}`,
  ].join('\n'));
  const logFile = path.join(root, 's3proxy.log');
  let child = await launch(conf, logFile, endpoint);
  const bucket = opts.bucket ?? 'twinflow-test';
  const env = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: identity,
    AWS_SECRET_ACCESS_KEY: credential,
    TWINFLOW_STORE: `s3://${bucket}${opts.prefix ? `/${opts.prefix}` : ''}`,
  };
  await createBucket(env, bucket);
  const kill = async () => {
    await killGroup(child.pid!, 'SIGKILL');
    await exited(child);
  };
  return {
    endpoint, bucket, env, basedir,
    kill,
    restart: async () => {
      await kill();
      child = await launch(conf, logFile, endpoint);
    },
    stop: async () => {
      await stopGroup(child);
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

async function launch(conf: string, logFile: string, endpoint: string): Promise<ChildProcess> {
  const log = await fs.open(logFile, 'a');
  const child = spawn('bash', ['--noprofile', '--norc', '-c', WATCHED, 'twinflow-s3proxy', 'java', '-jar', S3PROXY_JAR, '--properties', conf], {
    detached: true,
    stdio: ['ignore', log.fd, log.fd],
    env: { ...process.env, TWINFLOW_PARENT_PID: String(process.pid) },
  });
  await log.close();
  // However the test process ends, the server's group goes with it.
  const guard = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', guard);
  child.once('exit', () => process.removeListener('exit', guard));
  try {
    await waitUntilAnswers(endpoint, child, 60_000);
  } catch (err) {
    await killGroup(child.pid!, 'SIGKILL');
    const tail = (await fs.readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n');
    throw new Error(`${(err as Error).message}; its log (${logFile}):\n${tail}`);
  }
  return child;
}

/** Polls with HTTP requests (any answer will do: an unsigned request gets a 403). */
async function waitUntilAnswers(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`s3proxy exited during start-up (${child.exitCode ?? child.signalCode})`);
    const answered = await fetch(endpoint, { signal: AbortSignal.timeout(2000) }).then(async (r) => {
      await r.body?.cancel();
      return true;
    }, () => false);
    if (answered) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`s3proxy did not answer at ${endpoint} within ${timeoutMs / 1000}s`);
}

async function createBucket(env: Record<string, string>, bucket: string): Promise<void> {
  const client = new S3Client({
    endpoint: env.AWS_ENDPOINT_URL, region: env.AWS_REGION, forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

/** SIGTERM to the group, SIGKILL after 10 s; resolves once the server is gone. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await killGroup(child.pid!, 'SIGTERM');
  const timer = setTimeout(() => void killGroup(child.pid!, 'SIGKILL'), 10_000);
  await exited(child);
  clearTimeout(timer);
  await killGroup(child.pid!, 'SIGKILL'); // the watchdog, which would leave within a second anyway
}

let counters = 0;

/** Counts the client's commands from now on by name (`PutObjectCommand`: 2, ...): what a store actually sent. */
export function countRequests(client: S3Client): Map<string, number> {
  const counts = new Map<string, number>();
  client.middlewareStack.add((next, context) => async (args) => {
    counts.set(context.commandName!, (counts.get(context.commandName!) ?? 0) + 1);
    return next(args);
  }, { step: 'initialize', name: `twinflowCountRequests${++counters}` });
  return counts;
}

/** A file of `bytes` random bytes, written 1 MiB at a time. */
export async function randomFile(file: string, bytes: number): Promise<string> {
  const fh = await fs.open(file, 'w');
  try {
    for (let left = bytes; left > 0; left -= 2 ** 20) await fh.write(randomBytes(Math.min(left, 2 ** 20)));
  } finally {
    await fh.close();
  }
  return file;
}
