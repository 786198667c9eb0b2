// Where Lifeboat's Temporal server is and how to reach it, resolved in one
// place for the CLI, the worker, chat-ops and schedules, by the convention
// the Temporal CLI and SDKs share (environment configuration,
// @temporalio/envconfig): flags first, then TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, then the profile
// (--profile, else TEMPORAL_PROFILE, else "default") of the TOML file named by
// --config-file, else TEMPORAL_CONFIG_FILE, else
// ~/.config/temporalio/temporal.toml. A profile the Temporal CLI uses works
// here unchanged.
//
// Stricter than envconfig in three places, each a silent wrong connection at
// 3 a.m. otherwise: a config file named explicitly that does not exist, a
// client certificate without its key (envconfig drops the pair and the server
// then refuses the handshake without saying why), and a certificate file that
// cannot be read are errors naming the file and the variable or profile key
// that named it.
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TLSConfig } from '@temporalio/client';
import {
  loadClientConfig,
  loadClientConfigProfile,
  type ClientConfigProfile,
  type ConfigDataSource,
} from '@temporalio/envconfig';
import { LifeboatError, errorMessage } from '../errors';

/** The command-line flags, named as the Temporal CLI names them. */
export interface TemporalFlags {
  address?: string;
  namespace?: string;
  profile?: string;
  configFile?: string;
  tls?: boolean;
  tlsCertPath?: string;
  tlsKeyPath?: string;
  tlsCaPath?: string;
  tlsServerName?: string;
}

/** A resolved connection: what Connection.connect and NativeConnection.connect take, plus the namespace. */
export interface TemporalTarget {
  address: string;
  namespace: string;
  /** undefined: plaintext; true: TLS with the system's CAs; an object: a server CA, a client certificate, a server name. */
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
  /** Where the settings came from and what TLS is in use, for messages. Never the API key. */
  origin?: string;
}

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_NAMESPACE = 'default';

const TLS_FIELDS = {
  clientCert: { env: 'TEMPORAL_TLS_CLIENT_CERT', key: 'client_cert', flag: '--tls-cert-path' },
  clientKey: { env: 'TEMPORAL_TLS_CLIENT_KEY', key: 'client_key', flag: '--tls-key-path' },
  serverCACert: { env: 'TEMPORAL_TLS_SERVER_CA_CERT', key: 'server_ca_cert', flag: '--tls-ca-path' },
} as const;
type TlsField = keyof typeof TLS_FIELDS;

/** The file envconfig reads when neither --config-file nor TEMPORAL_CONFIG_FILE names one (Linux: XDG_CONFIG_HOME or ~/.config). */
export function defaultConfigFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (os.platform() === 'win32') return env.APPDATA ? path.join(env.APPDATA, 'temporalio', 'temporal.toml') : undefined;
  if (os.platform() === 'darwin')
    return env.HOME ? path.join(env.HOME, 'Library', 'Application Support', 'temporalio', 'temporal.toml') : undefined;
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg) return path.isAbsolute(xdg) ? path.join(xdg, 'temporalio', 'temporal.toml') : undefined;
  return env.HOME ? path.join(env.HOME, '.config', 'temporalio', 'temporal.toml') : undefined;
}

const stringEnv = (env: NodeJS.ProcessEnv): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'));

/** Flags first, then the environment, then the profile; throws a LifeboatError naming the file, profile, variable or key at fault. */
export function resolveTemporal(flags: TemporalFlags = {}, env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const explicitFile = flags.configFile
    ? { path: path.resolve(flags.configFile), by: '--config-file' }
    : env.TEMPORAL_CONFIG_FILE
      ? { path: env.TEMPORAL_CONFIG_FILE, by: 'TEMPORAL_CONFIG_FILE' }
      : undefined;
  const file = explicitFile?.path ?? defaultConfigFile(env);
  if (explicitFile && !existsSync(explicitFile.path)) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `Temporal config file ${explicitFile.path} (named by ${explicitFile.by}) does not exist`,
      {
        hints: [
          'write it (the Temporal CLI does: temporal config set --prop address --value <host:port> --profile <name>), or correct the path',
        ],
      },
    );
  }
  const fileExists = file !== undefined && existsSync(file);
  const profileName = flags.profile ?? env.TEMPORAL_PROFILE;
  const profileBy = flags.profile ? '--profile' : 'TEMPORAL_PROFILE';
  const where = (name: string) => `profile "${name}" in ${file}`;

  // The file alone (to say which setting a profile gave), then with the environment over it, as envconfig merges them.
  const envVars = stringEnv(env);
  const fail = (err: unknown) =>
    err instanceof LifeboatError
      ? err
      : new LifeboatError('INPUT_INVALID', `cannot read the Temporal config file ${file}: ${errorMessage(err)}`, {
          hints: [
            'it is TOML: [profile.<name>] tables with address, namespace, api_key and a [profile.<name>.tls] table (client_cert_path, client_key_path, server_ca_cert_path, server_name)',
          ],
          cause: err,
        });
  let profiles: Record<string, ClientConfigProfile> = {};
  if (fileExists) {
    try {
      profiles = loadClientConfig({ configSource: { path: file }, overrideEnvVars: envVars }).profiles;
    } catch (err) {
      // envconfig 1.24 throws a TypeError on a file with no [profile.*] table (an empty one too); the Go SDK reads it as no profiles.
      if (!(err instanceof TypeError)) throw fail(err);
    }
  }
  if (profileName && !profiles[profileName]) {
    const known = Object.keys(profiles);
    throw new LifeboatError(
      'INPUT_INVALID',
      `Temporal profile "${profileName}" (named by ${profileBy}) is not in ${fileExists ? file : `${file ?? 'the default config file'}, which does not exist`}`,
      {
        hints: [
          known.length ? `the file has profile(s): ${known.join(', ')}` : 'the file has no [profile.<name>] table',
          'TEMPORAL_CONFIG_FILE or --config-file names another file',
        ],
      },
    );
  }
  const useFile = Object.keys(profiles).length > 0;
  const source = {
    ...(useFile ? { configSource: { path: file! } } : { disableFile: true }),
    ...(profileName ? { profile: profileName } : {}),
    overrideEnvVars: envVars,
  };
  let fromFile: ClientConfigProfile = {};
  let merged: ClientConfigProfile;
  try {
    if (useFile) fromFile = loadClientConfigProfile({ ...source, disableEnv: true });
    merged = loadClientConfigProfile(source);
  } catch (err) {
    throw fail(err);
  }
  const profileUsed = fileExists && Object.keys(fromFile).length > 0 ? (profileName ?? 'default') : undefined;

  const address = flags.address ?? merged.address ?? DEFAULT_ADDRESS;
  const namespace = flags.namespace ?? merged.namespace ?? DEFAULT_NAMESPACE;
  const tlsIn = { ...merged.tls };
  if (flags.tlsCertPath) tlsIn.clientCert = { path: flags.tlsCertPath };
  if (flags.tlsKeyPath) tlsIn.clientKey = { path: flags.tlsKeyPath };
  if (flags.tlsCaPath) tlsIn.serverCACert = { path: flags.tlsCaPath };
  if (flags.tlsServerName) tlsIn.serverName = flags.tlsServerName;
  if (flags.tls) tlsIn.disabled = false;
  const tlsConfigured = merged.tls !== undefined || Object.keys(tlsIn).length > 0;

  /** Who named a TLS file: the flag, the variable, or the profile's key. */
  const namedBy = (field: TlsField, src: ConfigDataSource): string => {
    const f = TLS_FIELDS[field];
    const flag = { clientCert: flags.tlsCertPath, clientKey: flags.tlsKeyPath, serverCACert: flags.tlsCaPath }[field];
    if (flag) return f.flag;
    const kind = 'path' in src ? 'PATH' : 'DATA';
    if (env[`${f.env}_${kind}`] !== undefined) return `${f.env}_${kind}`;
    return `tls.${f.key}_${kind.toLowerCase()} of ${where(profileUsed ?? 'default')}`;
  };
  const read = (field: TlsField): Buffer | undefined => {
    const src = tlsIn[field];
    if (!src) return undefined;
    if (!('path' in src)) return Buffer.from(src.data);
    try {
      return readFileSync(src.path);
    } catch (err) {
      throw new LifeboatError(
        'INPUT_INVALID',
        `cannot read the Temporal TLS ${field === 'serverCACert' ? 'server CA certificate' : field === 'clientCert' ? 'client certificate' : 'client key'} ${src.path} (named by ${namedBy(field, src)}): ${errorMessage(err)}`,
        {
          hints: [
            'expected a PEM file readable by the user running Lifeboat; correct the path or the variable/profile key named above',
          ],
          cause: err,
        },
      );
    }
  };

  let tls: TLSConfig | boolean | undefined;
  let tlsSays = 'plaintext (no TLS)';
  if (tlsConfigured && tlsIn.disabled === true) {
    tls = false;
    tlsSays = `TLS turned off (by ${env.TEMPORAL_TLS !== undefined ? 'TEMPORAL_TLS' : `tls.disabled of ${where(profileUsed ?? 'default')}`})`;
  } else if (tlsConfigured) {
    if (Boolean(tlsIn.clientCert) !== Boolean(tlsIn.clientKey)) {
      const [has, lacks] = tlsIn.clientCert
        ? (['clientCert', 'clientKey'] as const)
        : (['clientKey', 'clientCert'] as const);
      throw new LifeboatError(
        'INPUT_INVALID',
        `a Temporal TLS ${has === 'clientCert' ? 'client certificate' : 'client key'} is named (by ${namedBy(has, tlsIn[has]!)}) without its ${lacks === 'clientCert' ? 'certificate' : 'key'}`,
        {
          hints: [
            `set ${TLS_FIELDS[lacks].env}_PATH, ${TLS_FIELDS[lacks].flag} or tls.${TLS_FIELDS[lacks].key}_path in the profile: mTLS needs both`,
          ],
        },
      );
    }
    const crt = read('clientCert');
    const key = read('clientKey');
    const ca = read('serverCACert');
    tls = {
      ...(tlsIn.serverName ? { serverNameOverride: tlsIn.serverName } : {}),
      ...(ca ? { serverRootCACertificate: ca } : {}),
      ...(crt && key ? { clientCertPair: { crt, key } } : {}),
    };
    const parts = [
      crt
        ? `client certificate ${'path' in tlsIn.clientCert! ? tlsIn.clientCert.path : `from ${namedBy('clientCert', tlsIn.clientCert!)}`}`
        : 'no client certificate',
      ca
        ? `server CA ${'path' in tlsIn.serverCACert! ? tlsIn.serverCACert.path : `from ${namedBy('serverCACert', tlsIn.serverCACert!)}`}`
        : "the system's CAs",
      ...(tlsIn.serverName ? [`server name ${tlsIn.serverName}`] : []),
    ];
    tlsSays = `TLS with ${parts.join(', ')}`;
  } else if (merged.apiKey !== undefined) {
    // An API key goes over TLS only (envconfig's rule; Temporal Cloud's too).
    tls = true;
    tlsSays = "TLS with the system's CAs";
  }
  const apiKeyBy =
    merged.apiKey === undefined
      ? undefined
      : env.TEMPORAL_API_KEY !== undefined
        ? 'TEMPORAL_API_KEY'
        : `api_key of ${where(profileUsed ?? 'default')}`;
  const origin = [
    tlsSays,
    ...(apiKeyBy ? [`API key from ${apiKeyBy}`] : []),
    ...(profileUsed ? [where(profileUsed)] : []),
  ].join('; ');
  return {
    address,
    namespace,
    ...(tls !== undefined ? { tls } : {}),
    ...(merged.apiKey !== undefined ? { apiKey: merged.apiKey } : {}),
    ...(merged.grpcMeta && Object.keys(merged.grpcMeta).length ? { metadata: merged.grpcMeta } : {}),
    origin,
  };
}

/** What Connection.connect / NativeConnection.connect take. */
export function connectionOptions(t: TemporalTarget): {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  metadata?: Record<string, string>;
} {
  return {
    address: t.address,
    ...(t.tls !== undefined ? { tls: t.tls } : {}),
    ...(t.apiKey !== undefined ? { apiKey: t.apiKey } : {}),
    ...(t.metadata ? { metadata: t.metadata } : {}),
  };
}

/** The error for a server that did not answer, naming the TLS in use: a refused handshake reads like an unreachable server. */
export function unreachable(t: TemporalTarget, err: unknown): LifeboatError {
  // It answered: an API key it does not accept is refused on the first call, inside connect.
  const code = grpcStatus(err)?.code;
  if (code === 7 || code === 16) return refused(t, err);
  const tlsOn = t.tls !== undefined && t.tls !== false;
  const hasCert = typeof t.tls === 'object' && t.tls.clientCertPair !== undefined;
  return new LifeboatError(
    'TOOL_FAILED',
    `cannot reach the Temporal server at ${t.address} (namespace ${t.namespace}; ${t.origin ?? 'plaintext (no TLS)'}): ${errorMessage(err)}`,
    {
      hints: [
        'is the Temporal server running? (npm start runs a dev server on 127.0.0.1:7233)',
        'the address, namespace and TLS come from --address/--namespace/--profile/--tls-* flags, then TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, then the profile (TEMPORAL_PROFILE) of TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml',
        ...(tlsOn && !hasCert
          ? [
              'TLS is on without a client certificate: a server that requires mTLS refuses the handshake; set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or tls.client_cert_path and tls.client_key_path in the profile)',
            ]
          : []),
        ...(!tlsOn
          ? ['TLS is off: a server that requires TLS drops the connection; set TEMPORAL_TLS=true or a TLS profile']
          : []),
      ],
      cause: err,
    },
  );
}

/** The gRPC status code of an error or of its causes (the SDK wraps a refused connection's in "Failed to connect"), and the error that carries it. */
export function grpcStatus(err: unknown): { code: number; err: unknown } | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return { code, err: e };
  }
  return undefined;
}

/**
 * The error for a server that answered but refused the namespace: an unknown
 * namespace, or no (or a wrong) API key. Without it a command fails later
 * with the SDK's bare "Failed to list workflows".
 */
export function refused(t: TemporalTarget, err: unknown): LifeboatError {
  const status = grpcStatus(err);
  const code = status?.code;
  const detail = errorMessage(status?.err ?? err);
  if (code === 5) {
    return new LifeboatError(
      'INPUT_INVALID',
      `namespace ${t.namespace} does not exist on the Temporal server at ${t.address}: ${detail}`,
      {
        hints: [
          `an administrator creates it: temporal operator namespace create --namespace ${t.namespace}`,
          "or name another with --namespace, TEMPORAL_NAMESPACE or the profile's namespace",
        ],
        cause: err,
      },
    );
  }
  if (code === 7 || code === 16) {
    const apiKeyFrom = /API key from ([^;]+)/.exec(t.origin ?? '')?.[1];
    return new LifeboatError(
      'TOOL_FAILED',
      `the Temporal server at ${t.address} refused access to namespace ${t.namespace}: ${detail} (${t.origin ?? 'plaintext (no TLS)'})`,
      {
        hints: [
          t.apiKey === undefined
            ? 'no API key was sent: set TEMPORAL_API_KEY, or api_key in the profile (--profile, TEMPORAL_PROFILE)'
            : `the API key (from ${apiKeyFrom ?? 'the configuration'}) is not valid for this server, or grants no role on namespace ${t.namespace}`,
        ],
        cause: err,
      },
    );
  }
  return unreachable(t, err);
}
