import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeSettings, temporalAddress, temporalNamespace, temporalSettings, workerIdentity } from '../../cli/connection.js';
import { CliError } from '../../cli/errors.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'twinflow-settings-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** An environment of its own: HOME points at an empty folder, so no real temporal.toml is read. */
function envWith(vars: Record<string, string> = {}): NodeJS.ProcessEnv {
  const home = fs.mkdtempSync(path.join(root, 'home-'));
  return { HOME: home, ...vars };
}

function write(name: string, text: string): string {
  const file = path.join(fs.mkdtempSync(path.join(root, 'f-')), name);
  fs.writeFileSync(file, text);
  return file;
}

const cloudToml = `
[profile.default]
address = "127.0.0.1:7233"

[profile.cloud]
address = "my-ns.a1b2c.tmprl.cloud:7233"
namespace = "my-ns.a1b2c"
api_key = "secret-key"
`;

describe('Temporal settings', () => {
  it('are the local dev server in namespace default when nothing is configured', () => {
    const s = temporalSettings(envWith());
    expect(s).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', profile: 'default', security: 'plaintext' });
    expect(s.configFile).toBeUndefined();
    expect(s.nativeConnection.tls).toBeUndefined();
    expect(s.connection).toEqual({ address: '127.0.0.1:7233' });
  });

  it('take TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE, and temporalAddress/temporalNamespace still answer with them', () => {
    const env = envWith({ TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'ml' });
    expect(temporalSettings(env)).toMatchObject({ address: 'temporal.internal:7233', namespace: 'ml' });
    expect(temporalAddress(env)).toBe('temporal.internal:7233');
    expect(temporalNamespace(env)).toBe('ml');
  });

  it('turn TLS on for an API key, in both the client and the worker options', () => {
    const s = temporalSettings(envWith({ TEMPORAL_ADDRESS: 'eu-west-1.aws.api.temporal.io:7233', TEMPORAL_NAMESPACE: 'ns.acct', TEMPORAL_API_KEY: 'k1' }));
    expect(s.security).toBe('API key over TLS');
    expect(s.connection).toMatchObject({ address: 'eu-west-1.aws.api.temporal.io:7233', apiKey: 'k1', tls: true });
    expect(s.nativeConnection).toMatchObject({ apiKey: 'k1', tls: true });
  });

  it('read client certificates, the server CA and the server name from TEMPORAL_TLS_* paths', () => {
    const cert = write('client.pem', 'CERT');
    const key = write('client.key', 'KEY');
    const ca = write('ca.pem', 'CA');
    const s = temporalSettings(envWith({
      TEMPORAL_ADDRESS: 'temporal.corp:7233', TEMPORAL_TLS_CLIENT_CERT_PATH: cert, TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca, TEMPORAL_TLS_SERVER_NAME: 'frontend.corp',
    }));
    expect(s.security).toBe('mTLS');
    const tls = s.connection.tls as { clientCertPair: { crt: Uint8Array; key: Uint8Array }; serverRootCACertificate: Uint8Array; serverNameOverride: string };
    expect(Buffer.from(tls.clientCertPair.crt).toString()).toBe('CERT');
    expect(Buffer.from(tls.clientCertPair.key).toString()).toBe('KEY');
    expect(Buffer.from(tls.serverRootCACertificate).toString()).toBe('CA');
    expect(tls.serverNameOverride).toBe('frontend.corp');
    expect(s.nativeConnection.tls).toEqual(s.connection.tls);
  });

  it('read the profile TEMPORAL_PROFILE names from TEMPORAL_CONFIG_FILE, and say so', () => {
    const file = write('temporal.toml', cloudToml);
    const s = temporalSettings(envWith({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' }));
    expect(s).toMatchObject({ address: 'my-ns.a1b2c.tmprl.cloud:7233', namespace: 'my-ns.a1b2c', profile: 'cloud', configFile: file });
    expect(s.connection).toMatchObject({ apiKey: 'secret-key', tls: true });
    expect(describeSettings(s)).toBe(`my-ns.a1b2c.tmprl.cloud:7233, namespace my-ns.a1b2c (profile cloud of ${file}; API key over TLS)`);
  });

  it('read an mTLS profile whose tls is an inline table', () => {
    const cert = write('client.pem', 'CERT');
    const key = write('client.key', 'KEY');
    const file = write('temporal.toml', `[profile.corp]\naddress = "temporal.corp:7233"\nnamespace = "ml"\ntls = { client_cert_path = "${cert}", client_key_path = "${key}" }\n`);
    const s = temporalSettings(envWith({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'corp' }));
    expect(s).toMatchObject({ address: 'temporal.corp:7233', namespace: 'ml', security: 'mTLS' });
  });

  it('read the default profile of the temporal.toml in the default location, with environment variables over it', () => {
    const env = envWith({ TEMPORAL_NAMESPACE: 'override' });
    const file = path.join(env.HOME!, '.config', 'temporalio', 'temporal.toml');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '[profile.default]\naddress = "10.0.0.5:7233"\nnamespace = "from-file"\n');
    expect(temporalSettings(env)).toMatchObject({ address: '10.0.0.5:7233', namespace: 'override', configFile: file });
  });

  it('reach a server this process started in plaintext, whatever API key the environment holds', () => {
    const s = temporalSettings(envWith({ TEMPORAL_API_KEY: 'k1' }), { address: '127.0.0.1:45000' });
    expect(s.connection).toEqual({ address: '127.0.0.1:45000' });
    expect(s.security).toBe('plaintext');
  });

  it('refuse a profile the file lacks, a missing TEMPORAL_CONFIG_FILE and a broken file, saying what to do', () => {
    const file = write('temporal.toml', cloudToml);
    const fail = (vars: Record<string, string>) => {
      try {
        temporalSettings(envWith(vars));
      } catch (err) {
        expect(err).toBeInstanceOf(CliError);
        return `${(err as CliError).message} | ${(err as CliError).hint}`;
      }
      throw new Error('no error');
    };
    expect(fail({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' })).toMatch(`there is no profile prod in ${file} | add it (\`temporal config set --profile prod`);
    expect(fail({ TEMPORAL_CONFIG_FILE: '/nowhere/temporal.toml' })).toMatch('TEMPORAL_CONFIG_FILE names /nowhere/temporal.toml, which does not exist');
    expect(fail({ TEMPORAL_PROFILE: 'prod' })).toMatch(/TEMPORAL_PROFILE is prod, but there is no Temporal config file at .*temporal\.toml/);
    expect(fail({ TEMPORAL_CONFIG_FILE: write('temporal.toml', '[profile.default\naddress = 1') })).toMatch(/cannot load the Temporal settings from profile default of .*temporal\.toml/);
    expect(fail({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/nowhere/c.pem', TEMPORAL_TLS_CLIENT_KEY_PATH: '/nowhere/k.pem' })).toMatch(/cannot read a TLS file .*\/nowhere\/c\.pem.*TEMPORAL_TLS_\*_PATH/);
    expect(fail({ TEMPORAL_TLS_CLIENT_CERT_PATH: write('client.pem', 'CERT') })).toMatch('a client certificate needs its key, and a key its certificate: only the certificate is set');
  });

  it('name a worker by pid, host and the queues it serves', () => {
    expect(workerIdentity(['cpu', 'gpu'], true)).toBe(`${process.pid}@${os.hostname()} (cpu, gpu, workflows)`);
  });
});
