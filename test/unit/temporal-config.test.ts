// How Lifeboat finds Temporal (src/client/temporal-config.ts): flags, then
// TEMPORAL_* variables, then the profile of the TOML config file, as
// @temporalio/envconfig and the Temporal CLI define it; and errors that name
// the file, profile, variable or key at fault.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient } from '../../src/client/temporal';
import { resolveTemporal } from '../../src/client/temporal-config';
import { temporalAddress } from '../harness/services';
import { LifeboatError } from '../../src/errors';

let dir: string;
let file: string;
const pem = (name: string) => path.join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-temporal-config-'));
  for (const f of ['ca.pem', 'client.pem', 'client.key', 'other.pem']) writeFileSync(pem(f), `-----BEGIN ${f}-----\n`);
  file = path.join(dir, 'temporal.toml');
  writeFileSync(
    file,
    [
      '[profile.default]',
      'address = "default.example.com:7233"',
      'namespace = "ns-default"',
      '[profile.prod]',
      'address = "prod.example.com:7233"',
      'namespace = "orders-prod"',
      '[profile.prod.tls]',
      `client_cert_path = "${pem('client.pem')}"`,
      `client_key_path = "${pem('client.key')}"`,
      `server_ca_cert_path = "${pem('ca.pem')}"`,
      'server_name = "frontend.prod"',
      '[profile.cloud]',
      'address = "acct.tmprl.cloud:7233"',
      'namespace = "orders.acct"',
      'api_key = "secret-key-value"',
      '[profile.broken]',
      'address = "broken.example.com:7233"',
      '[profile.broken.tls]',
      `client_cert_path = "${pem('missing.pem')}"`,
      `client_key_path = "${pem('client.key')}"`,
      '',
    ].join('\n'),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An environment with no config file of its own (HOME is an empty directory). */
const bare = () => {
  const home = mkdtempSync(path.join(dir, 'home-'));
  return { HOME: home };
};

function errorOf(fn: () => unknown): LifeboatError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LifeboatError) return err;
    throw err;
  }
  throw new Error('expected a LifeboatError');
}

describe('resolveTemporal', () => {
  it('without flags, variables or a config file: the dev server on 127.0.0.1:7233, namespace default, plaintext', () => {
    expect(resolveTemporal({}, bare())).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      origin: 'plaintext (no TLS)',
    });
  });

  it('an empty config file is no profiles, as in the Go SDK (envconfig 1.24 alone throws a TypeError on it)', () => {
    const empty = path.join(dir, 'empty.toml');
    writeFileSync(empty, '');
    expect(
      resolveTemporal({}, { ...bare(), TEMPORAL_CONFIG_FILE: empty, TEMPORAL_ADDRESS: 'a.example.com:7233' }),
    ).toMatchObject({ address: 'a.example.com:7233', namespace: 'default' });
  });

  it('reads the default profile of ~/.config/temporalio/temporal.toml, as the Temporal CLI does', () => {
    const env = bare();
    mkdirSync(path.join(env.HOME, '.config', 'temporalio'), { recursive: true });
    writeFileSync(
      path.join(env.HOME, '.config', 'temporalio', 'temporal.toml'),
      '[profile.default]\naddress = "home.example.com:7233"\n',
    );
    expect(resolveTemporal({}, env)).toMatchObject({ address: 'home.example.com:7233', namespace: 'default' });
  });

  it('flags win over TEMPORAL_* variables, which win over the profile; --profile wins over TEMPORAL_PROFILE', () => {
    const env = { ...bare(), TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' };
    expect(resolveTemporal({}, env)).toMatchObject({ address: 'prod.example.com:7233', namespace: 'orders-prod' });
    expect(resolveTemporal({}, { ...env, TEMPORAL_ADDRESS: 'env.example.com:7233' })).toMatchObject({
      address: 'env.example.com:7233',
      namespace: 'orders-prod',
    });
    expect(
      resolveTemporal(
        { address: 'flag.example.com:7233', namespace: 'flag-ns' },
        { ...env, TEMPORAL_ADDRESS: 'env.example.com:7233', TEMPORAL_NAMESPACE: 'env-ns' },
      ),
    ).toMatchObject({
      address: 'flag.example.com:7233',
      namespace: 'flag-ns',
    });
    expect(resolveTemporal({ profile: 'default' }, env)).toMatchObject({
      address: 'default.example.com:7233',
      namespace: 'ns-default',
    });
    expect(resolveTemporal({ configFile: file, profile: 'prod' }, bare())).toMatchObject({
      address: 'prod.example.com:7233',
    });
  });

  it('a TLS profile gives the server CA, the client certificate pair and the server name, and says where they came from', () => {
    const t = resolveTemporal({ profile: 'prod' }, { ...bare(), TEMPORAL_CONFIG_FILE: file });
    expect(t.tls).toEqual({
      serverNameOverride: 'frontend.prod',
      serverRootCACertificate: Buffer.from('-----BEGIN ca.pem-----\n'),
      clientCertPair: {
        crt: Buffer.from('-----BEGIN client.pem-----\n'),
        key: Buffer.from('-----BEGIN client.key-----\n'),
      },
    });
    expect(t.origin).toBe(
      `TLS with client certificate ${pem('client.pem')}, server CA ${pem('ca.pem')}, server name frontend.prod; profile "prod" in ${file}`,
    );
  });

  it('TEMPORAL_TLS_* variables override the profile file by file, and --tls-* flags override both', () => {
    const env = {
      ...bare(),
      TEMPORAL_CONFIG_FILE: file,
      TEMPORAL_PROFILE: 'prod',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pem('other.pem'),
    };
    const t = resolveTemporal({}, env);
    expect(typeof t.tls === 'object' && t.tls.serverRootCACertificate?.toString()).toBe('-----BEGIN other.pem-----\n');
    const f = resolveTemporal({ tlsCaPath: pem('ca.pem'), tlsServerName: 'flag.name' }, env);
    expect(typeof f.tls === 'object' && [f.tls.serverRootCACertificate?.toString(), f.tls.serverNameOverride]).toEqual([
      '-----BEGIN ca.pem-----\n',
      'flag.name',
    ]);
  });

  it('mTLS from variables alone, without any file', () => {
    const t = resolveTemporal(
      {},
      {
        ...bare(),
        TEMPORAL_ADDRESS: '127.0.0.1:7233',
        TEMPORAL_TLS_CLIENT_CERT_PATH: pem('client.pem'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: pem('client.key'),
      },
    );
    expect(typeof t.tls === 'object' && t.tls.clientCertPair?.crt.toString()).toBe('-----BEGIN client.pem-----\n');
    expect(t.origin).toBe(`TLS with client certificate ${pem('client.pem')}, the system's CAs`);
  });

  it("an API key turns TLS on (envconfig's rule), and never shows in the description; TEMPORAL_TLS=false turns it off", () => {
    const t = resolveTemporal({ profile: 'cloud' }, { ...bare(), TEMPORAL_CONFIG_FILE: file });
    expect(t).toMatchObject({
      address: 'acct.tmprl.cloud:7233',
      namespace: 'orders.acct',
      apiKey: 'secret-key-value',
      tls: true,
    });
    expect(t.origin).toBe(
      `TLS with the system's CAs; API key from api_key of profile "cloud" in ${file}; profile "cloud" in ${file}`,
    );
    const e = resolveTemporal({}, { ...bare(), TEMPORAL_API_KEY: 'other-secret' });
    expect(e).toMatchObject({
      apiKey: 'other-secret',
      tls: true,
      origin: "TLS with the system's CAs; API key from TEMPORAL_API_KEY",
    });
    expect(resolveTemporal({}, { ...bare(), TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' })).toMatchObject({
      tls: false,
      origin: 'TLS turned off (by TEMPORAL_TLS); API key from TEMPORAL_API_KEY',
    });
  });

  it('a missing certificate file names its path and the variable or profile key that named it', () => {
    const fromEnv = errorOf(() =>
      resolveTemporal(
        {},
        { ...bare(), TEMPORAL_TLS_CLIENT_CERT_PATH: pem('nope.pem'), TEMPORAL_TLS_CLIENT_KEY_PATH: pem('client.key') },
      ),
    );
    expect(fromEnv.code).toBe('INPUT_INVALID');
    expect(fromEnv.message).toContain(
      `cannot read the Temporal TLS client certificate ${pem('nope.pem')} (named by TEMPORAL_TLS_CLIENT_CERT_PATH): ENOENT`,
    );
    const fromProfile = errorOf(() =>
      resolveTemporal({ profile: 'broken' }, { ...bare(), TEMPORAL_CONFIG_FILE: file }),
    );
    expect(fromProfile.message).toContain(
      `cannot read the Temporal TLS client certificate ${pem('missing.pem')} (named by tls.client_cert_path of profile "broken" in ${file}): ENOENT`,
    );
    const fromFlag = errorOf(() => resolveTemporal({ tlsCaPath: pem('gone.pem') }, bare()));
    expect(fromFlag.message).toContain(
      `cannot read the Temporal TLS server CA certificate ${pem('gone.pem')} (named by --tls-ca-path)`,
    );
  });

  it('a client certificate without its key is an error, not a silent handshake without one', () => {
    const e = errorOf(() => resolveTemporal({}, { ...bare(), TEMPORAL_TLS_CLIENT_CERT_PATH: pem('client.pem') }));
    expect(e.message.split('\n')[0]).toBe(
      'a Temporal TLS client certificate is named (by TEMPORAL_TLS_CLIENT_CERT_PATH) without its key',
    );
    expect(e.hints).toEqual([
      'set TEMPORAL_TLS_CLIENT_KEY_PATH, --tls-key-path or tls.client_key_path in the profile: mTLS needs both',
    ]);
  });

  it('an unknown profile names the file and the profiles it has; a config file named but absent names the variable', () => {
    const p = errorOf(() =>
      resolveTemporal({}, { ...bare(), TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'staging' }),
    );
    expect(p.message.split('\n')[0]).toBe(`Temporal profile "staging" (named by TEMPORAL_PROFILE) is not in ${file}`);
    expect(p.hints[0]).toBe('the file has profile(s): default, prod, cloud, broken');
    const f = errorOf(() => resolveTemporal({}, { ...bare(), TEMPORAL_CONFIG_FILE: path.join(dir, 'absent.toml') }));
    expect(f.message.split('\n')[0]).toBe(
      `Temporal config file ${path.join(dir, 'absent.toml')} (named by TEMPORAL_CONFIG_FILE) does not exist`,
    );
  });

  it("a file that is not TOML is named with the parser's line", () => {
    const bad = path.join(dir, 'bad.toml');
    writeFileSync(bad, '[profile.default\naddress = 1\n');
    const e = errorOf(() => resolveTemporal({}, { ...bare(), TEMPORAL_CONFIG_FILE: bad }));
    expect(e.message).toMatch(
      new RegExp(
        `^cannot read the Temporal config file ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: Invalid TOML document: .*\\n1:  \\[profile\\.default`,
        's',
      ),
    );
  });

  it('a namespace the server does not have is named as such when connecting, not later as a failed list', async () => {
    const target = resolveTemporal({ address: temporalAddress(), namespace: 'no-such-namespace' }, bare());
    const err = await connectClient(target).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LifeboatError);
    expect((err as LifeboatError).code).toBe('INPUT_INVALID');
    expect((err as LifeboatError).message.split('\n')[0]).toMatch(
      new RegExp(
        `^namespace no-such-namespace does not exist on the Temporal server at ${temporalAddress()}: .*no-such-namespace`,
      ),
    );
    expect((err as LifeboatError).hints[0]).toBe(
      'an administrator creates it: temporal operator namespace create --namespace no-such-namespace',
    );
  });
});
