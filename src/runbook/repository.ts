// The runbook's repositories (`repository:`, or `repositories:` a list): where
// base backups and WAL go, how they are sealed (client-side encryption, S3
// server-side encryption, Object Lock) and which identity each role uses.
// Keys and credentials are named by environment variable, never given.
//
// Bundled into workflow code with schema.ts: zod only, no Node builtins.
import { z } from 'zod';
import { absolutePath, envName, identifier, nonEmpty } from './fields';

const repositoryUrl = z
  .string({ error: 'expected a repository URL (file:///path or s3://bucket/prefix)' })
  .refine((u) => /^file:\/\/\/./.test(u) || /^s3:\/\/[a-z0-9][a-z0-9.-]{1,62}(\/.*)?$/.test(u), {
    error: 'expected a repository URL (file:///absolute/path or s3://bucket/prefix)',
  });

const KEY_ID = 'expected a key id (1 to 32 letters, digits, ".", "_" or "-", e.g. k1)';

/** A key's id (stored in every object it seals) and where its value is: keyEnv or keyFile. */
const keyFields = {
  keyId: z.string({ error: KEY_ID }).regex(/^[A-Za-z0-9._-]{1,32}$/, { error: KEY_ID }),
  keyEnv: envName.optional(),
  keyFile: absolutePath('the key file').optional(),
};

const oneKeySource = (k: { keyEnv?: string | undefined; keyFile?: string | undefined }) =>
  (k.keyEnv === undefined) !== (k.keyFile === undefined);
const ONE_KEY_SOURCE =
  'expected exactly one of keyEnv (an environment variable holding the key) and keyFile (a file holding it)';

/** One encryption key of `previous`. */
const EncryptionKey = z
  .strictObject(keyFields, { error: 'expected a mapping with keyId and keyEnv (or keyFile)' })
  .refine(oneKeySource, { error: ONE_KEY_SOURCE });

/**
 * repository.encryption: new objects are sealed with keyId's key; objects of
 * the keys in `previous` stay readable (rotation). readUnencrypted serves
 * objects written before encryption was turned on (off: a plaintext object is refused).
 */
export const Encryption = z
  .strictObject(
    {
      ...keyFields,
      previous: z.array(EncryptionKey, { error: 'expected a list of { keyId, keyEnv } mappings' }).optional(),
      readUnencrypted: z.boolean({ error: 'expected true or false' }).optional(),
    },
    { error: 'expected a mapping with keyId and keyEnv (or keyFile), and optionally previous' },
  )
  .refine(oneKeySource, { error: ONE_KEY_SOURCE })
  .superRefine((e, ctx) => {
    const seen = new Set([e.keyId]);
    (e.previous ?? []).forEach((p, i) => {
      if (seen.has(p.keyId)) {
        ctx.addIssue({
          code: 'custom',
          path: ['previous', i, 'keyId'],
          message: `expected a key id not used above, got ${JSON.stringify(p.keyId)} twice (each key has its own id)`,
        });
      }
      seen.add(p.keyId);
    });
  });

/**
 * One storage identity (least privilege, src/repository/roles.ts): the
 * environment variables holding its keys, or an AWS profile; never values.
 */
const RoleCredentials = z
  .strictObject(
    {
      accessKeyIdEnv: envName.optional(),
      secretAccessKeyEnv: envName.optional(),
      sessionTokenEnv: envName.optional(),
      profile: z
        .string({ error: 'expected an AWS profile name' })
        .regex(/^[A-Za-z0-9_.@+=-]+$/, { error: 'expected an AWS profile name' })
        .optional(),
    },
    { error: 'expected a mapping with accessKeyIdEnv and secretAccessKeyEnv (and sessionTokenEnv), or profile' },
  )
  .refine(
    (c) =>
      c.profile
        ? !c.accessKeyIdEnv && !c.secretAccessKeyEnv && !c.sessionTokenEnv
        : !!c.accessKeyIdEnv && !!c.secretAccessKeyEnv,
    {
      error:
        'expected either accessKeyIdEnv and secretAccessKeyEnv (and optionally sessionTokenEnv), or profile, not both',
    },
  );

/** Per role: archive (archive-push), backup (baseBackup), restore (archive-get, restores), expire (expireBackups). */
const RepositoryCredentials = z.strictObject(
  {
    archive: RoleCredentials.optional(),
    backup: RoleCredentials.optional(),
    restore: RoleCredentials.optional(),
    expire: RoleCredentials.optional(),
  },
  { error: 'expected a mapping of roles (archive, backup, restore, expire) to their credentials' },
);

const SERVER_SIDE = 'expected { mode: SSE-S3 } or { mode: SSE-KMS, kmsKeyId: <key id or ARN> }';

/** S3 server-side encryption: the store encrypts at rest (SSE-S3), or with a KMS key (SSE-KMS). */
export const ServerSide = z.discriminatedUnion(
  'mode',
  [
    z.strictObject({ mode: z.literal('SSE-S3') }, { error: SERVER_SIDE }),
    z.strictObject({ mode: z.literal('SSE-KMS'), kmsKeyId: nonEmpty('a KMS key id or ARN') }, { error: SERVER_SIDE }),
  ],
  { error: SERVER_SIDE },
);

const LOCK_DAYS = 'expected a whole number of days from 1 to 36500';
const lockDays = z
  .number({ error: LOCK_DAYS })
  .int({ error: LOCK_DAYS })
  .min(1, { error: LOCK_DAYS })
  .max(36500, { error: LOCK_DAYS });

/**
 * S3 Object Lock: every base backup object is written locked for `days`,
 * every WAL object for `walDays` (default `days`), counted from its upload.
 * The bucket must have been created with Object Lock enabled.
 */
export const ObjectLock = z.strictObject(
  {
    mode: z.enum(['governance', 'compliance'], { error: 'expected "governance" or "compliance"' }),
    days: lockDays,
    walDays: lockDays.optional(),
  },
  { error: 'expected a mapping with mode (governance or compliance) and days (and optionally walDays)' },
);

export const Repository = z.strictObject(
  {
    /**
     * Short name of the repository in `repositories:` (messages, `lifeboat
     * check`, evidence, `--repo NAME`); defaults to repo1, repo2... by position.
     */
    name: identifier('a short repository name').optional(),
    url: repositoryUrl,
    endpointEnv: envName.optional(),
    regionEnv: envName.optional(),
    /** s3:// only: server-side encryption the store applies to every object Lifeboat writes. */
    serverSide: ServerSide.optional(),
    /** s3:// only: S3 Object Lock retention written with every base backup and WAL object. */
    objectLock: ObjectLock.optional(),
    /** Client-side encryption (AES-256-GCM) of every object Lifeboat writes; the key is named, never given. */
    encryption: Encryption.optional(),
    /** s3:// only: a storage identity per role; a role not named uses the AWS SDK's default chain. */
    credentials: RepositoryCredentials.optional(),
    /**
     * s3:// only: seconds a request may go without a byte either way before
     * it fails (each of the SDK's attempts); 60 by default. A slow but moving
     * transfer is never cut; a store that answers nothing is.
     */
    idleTimeoutSeconds: z
      .number({ error: 'expected a whole number of seconds from 1 to 3600' })
      .int({ error: 'expected a whole number of seconds from 1 to 3600' })
      .min(1, { error: 'expected a whole number of seconds from 1 to 3600' })
      .max(3600, { error: 'expected a whole number of seconds from 1 to 3600' })
      .optional(),
  },
  { error: 'expected a mapping with url (and for s3://, endpointEnv)' },
);

/**
 * runbookField: where the runbook wrote this entry (`repository`, or
 * `repositories[1]` as load.ts names list fields), so that errors about it
 * name its own fields (repositories[1].credentials.expire).
 */
export type RepositoryEntry = z.output<typeof Repository> & { name: string; runbookField?: string };

/** Every entry named: its own name, else repo1, repo2... by position. */
function namedRepositories(list: Array<z.output<typeof Repository>>): RepositoryEntry[] {
  return list.map((r, i) => ({ ...r, name: r.name ?? `repo${i + 1}` }));
}

/** The runbook's two ways to name its repositories, as parsed before the list is made (repositoryEntries). */
interface RepositoryFields {
  repository?: z.output<typeof Repository> | undefined;
  repositories?: Array<z.output<typeof Repository>> | undefined;
}

/** The entries of repositories:, or the one repository:, each named and knowing its runbook field. */
export function repositoryEntries(rb: RepositoryFields): RepositoryEntry[] {
  return rb.repositories
    ? namedRepositories(rb.repositories).map((r, i) => ({ ...r, runbookField: `repositories[${i}]` }))
    : namedRepositories(rb.repository ? [rb.repository] : []).map((r) => ({ ...r, runbookField: 'repository' }));
}

/** Exactly one of repository: and repositories:, names unique. */
export function repositoriesOneWay(rb: RepositoryFields, ctx: z.RefinementCtx): void {
  if (rb.repository && rb.repositories) {
    ctx.addIssue({
      code: 'custom',
      path: ['repositories'],
      message:
        'expected either repository: (one) or repositories: (a list), not both (move the repository: entry to the head of repositories:)',
    });
    return;
  }
  if (!rb.repository && !rb.repositories) {
    ctx.addIssue({
      code: 'custom',
      path: ['repository'],
      message: 'expected a mapping with url (or repositories: a list of them)',
    });
    return;
  }
  const named = namedRepositories(rb.repositories ?? []);
  // Each entry whose name (or URL) an earlier entry has, named with the first that has it.
  const noRepeats = (key: 'name' | 'url', expected: (first: number) => string) => {
    const seen = new Map<string, number>();
    named.forEach((r, i) => {
      const first = seen.get(r[key]);
      if (first !== undefined)
        ctx.addIssue({ code: 'custom', path: ['repositories', i, key], message: expected(first) });
      else seen.set(r[key], i);
    });
  };
  noRepeats('name', (first) => `expected a name not used by repositories[${first}]`);
  noRepeats(
    'url',
    (first) => `expected a URL other than repositories[${first}]'s (the same repository twice is no second copy)`,
  );
}

/**
 * serverSide, objectLock and idleTimeoutSeconds are S3 features: on a file://
 * repository the first two would silently protect nothing, the last limit nothing.
 */
export function s3OnlySettings(rb: RepositoryFields, ctx: z.RefinementCtx): void {
  const entries: Array<[Array<string | number>, z.output<typeof Repository>]> = rb.repositories
    ? rb.repositories.map((r, i) => [['repositories', i], r])
    : rb.repository
      ? [[['repository'], rb.repository]]
      : [];
  for (const [at, r] of entries) {
    if (r.url.startsWith('s3://')) continue;
    for (const key of ['serverSide', 'objectLock', 'idleTimeoutSeconds'] as const) {
      if (r[key] === undefined) continue;
      const outside =
        key === 'idleTimeoutSeconds'
          ? 'a file system read or write has no request to time out'
          : "a file system's own encryption and immutability are set up outside Lifeboat";
      ctx.addIssue({
        code: 'custom',
        path: [...at, key],
        message: `expected no ${key} on a ${r.url.split(':')[0]}:// repository: it is an S3 setting (s3://bucket/prefix); ${outside}`,
      });
    }
  }
}
