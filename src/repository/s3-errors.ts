// What an s3:// repository says when the store refuses or fails a request:
// the SDK's failure mapped to a code of the catalogue and an operator's
// message with hints (endpoint, credentials, Object Lock, server-side
// encryption, policy). Never carries a credential: values the environment or
// the runbook's role holds are redacted from whatever the SDK echoed.
import { LifeboatError } from '../errors';
import { permissionFor } from './roles';
import { stripUserinfo, type S3Target } from './s3-client';

/** Environment variables whose values must never reach a message. */
const SECRET_ENVS = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID'];

/** Maps an SDK failure to an operator's message; never carries credentials. */
export function s3Error(t: S3Target, op: string, key: string, err: unknown): LifeboatError {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const code = status(err);
  const at = `${t.url}${t.endpoint.url ? ` at ${stripUserinfo(t.endpoint.url)}` : ''}`;
  const said = redact(`${e.name ?? 'Error'}${code ? ` (HTTP ${code})` : ''}: ${e.message ?? e.code ?? String(err)}`);
  const what = `${op} ${key} in ${at} failed: ${t.identity.kind === 'static' ? redactValues(said, Object.values(t.identity.credentials)) : said}`;
  const endpointHint = t.endpoint.url
    ? `the endpoint comes from $${t.endpoint.source}; check that it is right and the store is up`
    : `no endpoint is set (looked at ${t.endpoint.source}), so AWS S3 itself is used; for MinIO or Ceph set one of them`;
  const credentialHint =
    t.identity.kind === 'default'
      ? 'credentials come from the AWS SDK default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role; check that the user running lifeboat has them'
      : `credentials are ${t.identity.describe}; check that they are this role's (docs/iam/ has each role's policy)`;
  const name = e.name ?? '';
  const lock = t.writeSettings.objectLock;
  if (lock && /ObjectLockConfiguration|object lock/i.test(`${name} ${e.message ?? ''}`)) {
    return new LifeboatError('REPOSITORY_INVALID', what, {
      hints: [
        `the runbook's ${t.runbookField}.objectLock (${lock.mode}, ${lock.days} days) needs a bucket created with Object Lock enabled; s3://${t.bucket} has none`,
        `create one with it (aws s3api create-bucket --object-lock-enabled-for-bucket, or mc mb --with-lock) and point the repository there, or remove ${t.runbookField}.objectLock`,
      ],
      cause: err,
    });
  }
  const sse = t.writeSettings.serverSide;
  if (sse && /kms|encrypt/i.test(`${name} ${e.message ?? ''}`)) {
    return new LifeboatError('REPOSITORY_INVALID', what, {
      hints: [
        sse.mode === 'SSE-KMS'
          ? `the store refused server-side encryption with KMS key ${JSON.stringify(sse.kmsKeyId)} (runbook ${t.runbookField}.serverSide): check the key id, that the key exists and is enabled, and that the credentials may use it (kms:GenerateDataKey, kms:Decrypt)`
          : `the store refused server-side encryption SSE-S3 (runbook ${t.runbookField}.serverSide): check that the store supports it (MinIO needs a KMS configured)`,
      ],
      cause: err,
    });
  }
  if (name === 'NoSuchBucket') {
    return new LifeboatError('REPOSITORY_INVALID', what, {
      hints: [`create the bucket ${t.bucket} or fix the repository URL`, endpointHint],
      cause: err,
    });
  }
  if (name === 'AccessDenied') {
    // Signed and recognised, but not allowed: a policy question no retry answers.
    const permission = permissionFor(op);
    return new LifeboatError(
      'PRIVILEGE_MISSING',
      `${what}: ${t.identity.describe} lacks ${permission} on s3://${t.bucket}/${t.prefix}`,
      {
        hints: [
          `grant ${permission} to that identity, or run this with the identity whose policy has it (docs/iam/: archive and backup write, restore reads, expire deletes)`,
          credentialHint,
        ],
        cause: err,
      },
    );
  }
  if (code === 403 || /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Credential|ExpiredToken/i.test(name)) {
    return new LifeboatError('REPOSITORY_UNREACHABLE', what, {
      hints: [credentialHint, `the credentials need read/write access to s3://${t.bucket}/${t.prefix}`],
      cause: err,
    });
  }
  return new LifeboatError('REPOSITORY_UNREACHABLE', what, { hints: [endpointHint, credentialHint], cause: err });
}

/** The HTTP status of an SDK failure, when it got an answer. */
export function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** A missing key (GET's NoSuchKey, HEAD's bare 404), never a missing bucket. */
export function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || (status(err) === 404 && name !== 'NoSuchBucket');
}

function redactValues(text: string, values: string[]): string {
  let out = text;
  for (const value of values) if (value.length >= 4) out = out.split(value).join('[redacted]');
  return out;
}

/** Removes any credential value that an error message might echo. */
function redact(text: string): string {
  let out = text;
  for (const name of SECRET_ENVS) {
    const value = process.env[name];
    if (value && value.length >= 4) out = out.split(value).join('[redacted]');
  }
  return out;
}
