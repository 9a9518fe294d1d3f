import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionOptions } from '@temporalio/client';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { CliError } from './errors.js';

/**
 * Where twinflow finds Temporal, loaded the way every Temporal SDK and the `temporal` CLI
 * load it (@temporalio/envconfig): a profile of a `temporal.toml` file, then the
 * TEMPORAL_* environment variables over it. The CLI, the review page and worker.ts all
 * connect with these, so one setting moves them all to another deployment.
 */
export interface TemporalSettings {
  /** The frontend's host:port. @default '127.0.0.1:7233' */
  address: string;
  /** @default 'default' */
  namespace: string;
  /** The profile read from the config file. @default 'default' (TEMPORAL_PROFILE overrides) */
  profile: string;
  /** The config file read, when there is one (TEMPORAL_CONFIG_FILE, else the default location). */
  configFile?: string;
  /** How the connection authenticates, in words: `plaintext`, `TLS`, `mTLS`, `API key over TLS`. */
  security: string;
  /** For `Connection.connect` (@temporalio/client). */
  connection: ConnectionOptions;
  /** For `NativeConnection.connect` (@temporalio/worker). */
  nativeConnection: NativeConnectionOptions;
}

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_NAMESPACE = 'default';

/**
 * Loads the settings. `address` names a server this process started itself (the embedded
 * dev server): it is reached in plaintext, whatever TLS or API key the profile holds.
 */
export function temporalSettings(env: NodeJS.ProcessEnv = process.env, opts: { address?: string } = {}): TemporalSettings {
  const profile = env.TEMPORAL_PROFILE || 'default';
  const configFile = configFilePath(env);
  const hasFile = configFile !== undefined && fs.existsSync(configFile);
  checkFileIsThere(env, profile, configFile, hasFile);
  const config = loadOrExplain(profile, configFile, () => {
    const loaded = loadClientConfigProfile({
      ...(hasFile ? { configSource: { path: configFile } } : { disableFile: true }),
      overrideEnvVars: definedOnly(env),
    });
    checkCertPair(loaded);
    return toClientOptions(loaded);
  });
  const options = opts.address ? { address: opts.address } : config.connectionOptions;
  const address = options.address ?? DEFAULT_ADDRESS;
  const native: NativeConnectionOptions = { ...options, address };
  return {
    address,
    namespace: config.namespace ?? DEFAULT_NAMESPACE,
    profile,
    ...(hasFile ? { configFile } : {}),
    security: securityOf(native),
    nativeConnection: native,
    connection: { address, ...(native.tls !== undefined ? { tls: native.tls } : {}), ...(native.apiKey ? { apiKey: native.apiKey } : {}), ...(native.metadata ? { metadata: native.metadata } : {}) },
  };
}

/** Where every command finds Temporal; the same CLI drives the embedded server or a real cluster. */
export function temporalAddress(env: NodeJS.ProcessEnv = process.env): string {
  return temporalSettings(env).address;
}

export function temporalNamespace(env: NodeJS.ProcessEnv = process.env): string {
  return temporalSettings(env).namespace;
}

/** The settings in one phrase for messages: what was used, so a person can tell what to change. */
export function describeSettings(s: TemporalSettings): string {
  const source = s.configFile ? `profile ${s.profile} of ${s.configFile}` : 'no config file';
  return `${s.address}, namespace ${s.namespace} (${source}; ${s.security})`;
}

/** What to set to reach another server; the tail of every connection error. */
export const SETTINGS_HINT =
  'set TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE (plus TEMPORAL_API_KEY, or TEMPORAL_TLS_CLIENT_CERT_PATH and ' +
  'TEMPORAL_TLS_CLIENT_KEY_PATH), or pick a profile of temporal.toml with TEMPORAL_PROFILE (file: TEMPORAL_CONFIG_FILE); ' +
  'for this host only, start the embedded server with `npx twinflow dev`';

/** How a worker names itself to Temporal: `twinflow workers` shows it beside what it runs. */
export function workerIdentity(queues: string[], workflows: boolean): string {
  return `${process.pid}@${os.hostname()} (${[...queues, ...(workflows ? ['workflows'] : [])].join(', ')})`;
}

/** TEMPORAL_CONFIG_FILE, else where the `temporal` CLI keeps its file (envconfig's own rule). */
export function configFilePath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TEMPORAL_CONFIG_FILE) return env.TEMPORAL_CONFIG_FILE;
  const base = process.platform === 'win32' ? env.APPDATA
    : process.platform === 'darwin' ? env.HOME && path.join(env.HOME, 'Library', 'Application Support')
      : (env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : env.HOME && path.join(env.HOME, '.config'));
  return base ? path.join(base, 'temporalio', 'temporal.toml') : undefined;
}

/** envconfig ignores a missing file; a file or profile someone named explicitly must be there. */
function checkFileIsThere(env: NodeJS.ProcessEnv, profile: string, file: string | undefined, hasFile: boolean): void {
  if (hasFile) return;
  if (env.TEMPORAL_CONFIG_FILE) {
    throw new CliError(`TEMPORAL_CONFIG_FILE names ${env.TEMPORAL_CONFIG_FILE}, which does not exist`, 'point it at your temporal.toml, or unset it');
  }
  if (env.TEMPORAL_PROFILE) {
    throw new CliError(
      `TEMPORAL_PROFILE is ${profile}, but there is no Temporal config file${file ? ` at ${file}` : ''}`,
      `create the profile (\`temporal config set --profile ${profile} --prop address --value HOST:PORT\`), set TEMPORAL_CONFIG_FILE, or unset TEMPORAL_PROFILE`,
    );
  }
}

function loadOrExplain<T>(profile: string, file: string | undefined, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof CliError) throw err;
    const message = (err as Error).message;
    const where = file && fs.existsSync(file) ? `profile ${profile} of ${file}` : 'the TEMPORAL_* environment variables';
    if (/not found in config data/.test(message)) {
      throw new CliError(`there is no profile ${profile} in ${file}`, `add it (\`temporal config set --profile ${profile} --prop address --value HOST:PORT\`), or set TEMPORAL_PROFILE to one the file has`);
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EACCES') {
      throw new CliError(`cannot read a TLS file named in ${where}: ${message}`, 'check the TEMPORAL_TLS_*_PATH variables or the profile\'s tls paths');
    }
    throw new CliError(`cannot load the Temporal settings from ${where}: ${message}`, `fix ${file ?? 'the variables'} (see https://docs.temporal.io/develop/environment-configuration)`);
  }
}

/** envconfig drops a client certificate without its key (or a key without its certificate) silently. */
function checkCertPair(p: ClientConfigProfile): void {
  if (!p.tls?.clientCert === !p.tls?.clientKey) return;
  throw new CliError(
    `a client certificate needs its key, and a key its certificate: only the ${p.tls?.clientCert ? 'certificate' : 'key'} is set`,
    'set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or the profile\'s tls.client_cert_path and tls.client_key_path)',
  );
}

function securityOf(o: NativeConnectionOptions): string {
  if (o.apiKey) return 'API key over TLS';
  if (!o.tls) return 'plaintext';
  return typeof o.tls === 'object' && o.tls.clientCertPair ? 'mTLS' : 'TLS';
}

function definedOnly(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}
