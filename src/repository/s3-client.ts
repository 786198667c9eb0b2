// Where an s3:// repository lives and who signs for it (src/repository/s3.ts):
// the bucket and prefix from the URL, the endpoint and region from the
// environment, the identity from the runbook's role, and one S3 client
// built from them. What the other s3-*.ts files need of a repository.
import { S3Client } from '@aws-sdk/client-s3';
import { LifeboatError } from '../errors';
import { resolveIdentity, type ResolvedIdentity } from './roles';
import type { RepositoryEnvOptions } from './types';

const ENDPOINT_ENVS = ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL', 'S3_ENDPOINT'];

export interface Endpoint {
  /** Where the endpoint came from, for hints: the variable's name, never its value's secrets. */
  source: string;
  url?: string;
}

/** One s3:// repository as the requests and messages about it need it. */
export interface S3Target {
  readonly url: string;
  readonly bucket: string;
  /** '' or 'some/prefix/' */
  readonly prefix: string;
  readonly client: S3Client;
  readonly endpoint: Endpoint;
  /** Whose credentials the client signs with (src/repository/roles.ts); named in messages, never its secrets. */
  readonly identity: ResolvedIdentity;
  /** Runbook repository.serverSide / repository.objectLock: applied to every PUT (src/repository/object-lock.ts). */
  readonly writeSettings: Pick<RepositoryEnvOptions, 'serverSide' | 'objectLock'>;
  /** How errors name the runbook entry: `repository`, or `repositories[1]` in a list. */
  readonly runbookField: string;
}

/** The target an s3:// URL and the runbook's options name; refuses a URL that is not one. */
export function s3Target(url: string, opts: RepositoryEnvOptions = {}): S3Target {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,62})(?:\/(.*))?$/.exec(url);
  if (!m) {
    throw new LifeboatError(
      'REPOSITORY_INVALID',
      `not an s3:// repository URL: ${JSON.stringify(stripUserinfo(url))}`,
      {
        hints: ['use s3://bucket/prefix (bucket names are lower-case letters, digits, dots and dashes)'],
      },
    );
  }
  const bucket = m[1] as string;
  const rest = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  const prefix = rest === '' ? '' : `${rest}/`;
  const endpointVars = [...(opts.endpointEnv ? [opts.endpointEnv] : []), ...ENDPOINT_ENVS];
  const endpointVar = endpointVars.find((v) => process.env[v]);
  const endpoint: Endpoint = endpointVar
    ? { source: endpointVar, url: process.env[endpointVar] }
    : { source: opts.endpointEnv ?? ENDPOINT_ENVS.join(', ') };
  const region = (opts.regionEnv ? process.env[opts.regionEnv] : undefined) ?? process.env.AWS_REGION ?? 'us-east-1';
  const identity = resolveIdentity(opts.role, opts.credentials, opts.runbookField);
  return {
    url: `s3://${bucket}/${prefix}`.replace(/\/$/, ''),
    bucket,
    prefix,
    client: newClient(endpoint, region, identity, opts.idleTimeoutSeconds ?? DEFAULT_IDLE_TIMEOUT_SECONDS),
    endpoint,
    identity,
    writeSettings: {
      ...(opts.serverSide ? { serverSide: opts.serverSide } : {}),
      ...(opts.objectLock ? { objectLock: opts.objectLock } : {}),
    },
    runbookField: opts.runbookField ?? 'repository',
  };
}

/** Seconds a request may go without a byte either way (runbook repository.idleTimeoutSeconds). */
export const DEFAULT_IDLE_TIMEOUT_SECONDS = 60;

function newClient(endpoint: Endpoint, region: string, identity: ResolvedIdentity, idleSeconds: number): S3Client {
  return new S3Client({
    region,
    forcePathStyle: true,
    ...(endpoint.url ? { endpoint: endpoint.url } : {}),
    // The role's own identity when the runbook names one; otherwise the
    // SDK's default chain, as before roles existed.
    ...(identity.kind === 'static'
      ? { credentials: identity.credentials }
      : identity.kind === 'profile'
        ? { profile: identity.profile }
        : {}),
    // A store that accepts the connection and then answers nothing (a
    // frozen process, a hung gateway) must fail the request, not hang it:
    // socketTimeout is 60 s (idleTimeoutSeconds) without a byte either way, so a slow but moving
    // transfer (a large part, a long download) is never cut. requestTimeout
    // alone only logs a warning in this SDK (throwOnRequestTimeout is off),
    // and archive-push, archive-get and lifeboat check then waited forever
    // on a SIGSTOPped MinIO (test/faults/object-store.test.ts).
    requestHandler: { connectionTimeout: 5_000, socketTimeout: idleSeconds * 1000 },
  });
}

/** A URL without its user:password@ part, for messages. */
export function stripUserinfo(url: string): string {
  return url.replace(/^([a-z0-9+.-]+:\/\/)[^/@]*@/i, '$1');
}
