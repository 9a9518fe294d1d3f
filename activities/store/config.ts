import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArtifactStore } from '../artifact-store.js';
import { StageCache } from '../cache.js';
import { homeLayout, twinflowHome, type HomeLayout } from '../home.js';
import { StageLogs } from '../stage-log.js';
import { FolderObjects, type ObjectStore } from './objects.js';
import { openObjectStore } from './s3-objects.js';

/** Everything a host keeps with the artifacts: the artifacts themselves, the stage cache index, stage logs. */
export interface Stores {
  artifacts: ArtifactStore;
  cache: StageCache;
  logs: StageLogs;
  /** Where they are, for messages: a folder or `s3://BUCKET/PREFIX`. */
  location: string;
  /** Whether other hosts see the same store (S3, or a folder named by TWINFLOW_STORE). */
  shared: boolean;
}

const GiB = 2 ** 30;

/**
 * The stores this host uses, from `TWINFLOW_STORE`:
 * - unset: folders under TWINFLOW_HOME (`artifacts/`, `cache/`, `runs/<run>/logs/`), one host;
 * - `s3://BUCKET/PREFIX`: S3-compatible storage configured the AWS way (AWS_ENDPOINT_URL,
 *   AWS_REGION, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE), with a local cache of
 *   what this host read under TWINFLOW_HOME/artifacts, bounded by TWINFLOW_STORE_CACHE_GB;
 * - a folder (`/mnt/shared/twinflow` or `file:///...`): a disk every host mounts at that path.
 */
export function openStores(home?: HomeLayout, env?: NodeJS.ProcessEnv): Stores {
  if (home || env) return open(home ?? homeLayout(twinflowHome(env)), env ?? process.env);
  // One set per process and settings: a command or the review page asks on every request,
  // and each S3 store holds a client with its connections.
  const key = `${process.env.TWINFLOW_HOME ?? ''}\0${process.env.TWINFLOW_STORE ?? ''}`;
  if (processStores?.key !== key) processStores = { key, stores: open(homeLayout(), process.env) };
  return processStores.stores;
}

let processStores: { key: string; stores: Stores } | undefined;

function open(home: HomeLayout, env: NodeJS.ProcessEnv): Stores {
  const setting = env.TWINFLOW_STORE?.trim();
  if (!setting) {
    return {
      artifacts: new ArtifactStore(home.artifactsDir),
      cache: new StageCache(home.cacheDir),
      logs: new StageLogs(home),
      location: home.root,
      shared: false,
    };
  }
  if (setting.startsWith('s3://')) {
    const remote = openObjectStore(setting, env);
    return sharedStores(home, remote, new ArtifactStore({ local: home.artifactsDir, remote, cacheBytes: cacheBytes(env) }));
  }
  const dir = setting.startsWith('file://') ? fileURLToPath(setting) : setting;
  if (!path.isAbsolute(dir)) {
    throw new Error(`TWINFLOW_STORE=${setting} is neither s3://BUCKET/PREFIX nor an absolute folder; set it to one, or unset it for this host's own folders`);
  }
  const objects = new FolderObjects(dir);
  return sharedStores(home, objects, new ArtifactStore(dir));
}

function sharedStores(home: HomeLayout, objects: ObjectStore, artifacts: ArtifactStore): Stores {
  return {
    artifacts,
    cache: new StageCache(objects, 'cache/'),
    logs: new StageLogs(home, objects),
    location: objects.location,
    shared: true,
  };
}

function cacheBytes(env: NodeJS.ProcessEnv): number {
  const raw = env.TWINFLOW_STORE_CACHE_GB;
  if (raw === undefined || raw === '') return 20 * GiB;
  const gb = Number(raw);
  if (!Number.isFinite(gb) || gb <= 0) throw new Error(`TWINFLOW_STORE_CACHE_GB=${raw} is not a positive number of GiB (default 20)`);
  return gb * GiB;
}
