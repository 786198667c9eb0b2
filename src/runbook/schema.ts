// The runbook schema (shared/DESIGN.md §5): one zod schema, parsed at the
// edge, so a typo fails fast with the path of the bad field. Secrets never
// appear here: runbooks name environment variables (`*Env`) that workers read.
//
// This module is imported by workflow code too (zod works in the sandbox):
// keep it free of Node builtins.
import { z } from 'zod';
import { Engine } from './engine';

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DURATION_RE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

export const identifier = (what: string) =>
  z
    .string({ error: `expected ${what} (lower-case letters, digits, '-' or '_')` })
    .regex(NAME_RE, { error: `expected ${what} (lower-case letters, digits, '-' or '_', at most 63 characters)` });

const envName = z
  .string({ error: 'expected the name of an environment variable' })
  .regex(ENV_RE, { error: 'expected the name of an environment variable (letters, digits and _), not its value' });

const port = z
  .number({ error: 'expected an integer between 1 and 65535' })
  .int({ error: 'expected an integer between 1 and 65535' })
  .min(1, { error: 'expected an integer between 1 and 65535' })
  .max(65535, { error: 'expected an integer between 1 and 65535' });

const nonEmpty = (what: string) =>
  z
    .string({ error: `expected ${what}` })
    .trim()
    .min(1, { error: `expected ${what}, got an empty string` });

const absolutePath = (what: string) =>
  z
    .string({ error: `expected ${what} as an absolute path` })
    .refine((p) => p.startsWith('/'), { error: `expected ${what} as an absolute path (starting with /)` });

/** Parses "15m", "24h", "1h30m", "90s", "2d" or a number of seconds into seconds. */
export function parseDurationSeconds(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = DURATION_RE.exec(value.trim());
  if (!m || value.trim() === '') return undefined;
  const [, d, h, min, s] = m;
  return Number(d ?? 0) * 86400 + Number(h ?? 0) * 3600 + Number(min ?? 0) * 60 + Number(s ?? 0);
}

const duration = z
  .union([z.string(), z.number()], { error: 'expected a duration such as "15m", "24h" or "1h30m"' })
  .transform((v, ctx) => {
    const seconds = parseDurationSeconds(v);
    if (seconds === undefined || seconds <= 0) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration such as "15m", "24h" or "1h30m"' });
      return z.NEVER;
    }
    return seconds;
  });

const repositoryUrl = z
  .string({ error: 'expected a repository URL (file:///path or s3://bucket/prefix)' })
  .refine((u) => /^file:\/\/\/./.test(u) || /^s3:\/\/[a-z0-9][a-z0-9.-]{1,62}(\/.*)?$/.test(u), {
    error: 'expected a repository URL (file:///absolute/path or s3://bucket/prefix)',
  });

export const Primary = z.strictObject(
  {
    host: nonEmpty('a host name or address'),
    port: port.default(5432),
    database: nonEmpty('a database name'),
    user: nonEmpty('a role name'),
    passwordEnv: envName.optional(),
  },
  { error: 'expected a mapping with host, port, database, user and passwordEnv' },
);

export const Cluster = z.strictObject(
  {
    /** Name of the cluster in the repository; defaults to the runbook's name. */
    name: identifier('a cluster name').optional(),
    primary: Primary,
    pgBin: absolutePath('the PostgreSQL bin directory').default('/usr/lib/postgresql/15/bin'),
    osUser: nonEmpty('an operating-system user').default('postgres'),
  },
  { error: 'expected a mapping with primary (and optionally name, pgBin, osUser)' },
);

const KEY_ID = 'expected a key id (1 to 32 letters, digits, ".", "_" or "-", e.g. k1)';

/** One encryption key: its id (stored in every object it seals) and where its value is. */
const EncryptionKey = z
  .strictObject(
    {
      keyId: z.string({ error: KEY_ID }).regex(/^[A-Za-z0-9._-]{1,32}$/, { error: KEY_ID }),
      keyEnv: envName.optional(),
      keyFile: absolutePath('the key file').optional(),
    },
    { error: 'expected a mapping with keyId and keyEnv (or keyFile)' },
  )
  .refine((k) => (k.keyEnv === undefined) !== (k.keyFile === undefined), {
    error: 'expected exactly one of keyEnv (an environment variable holding the key) and keyFile (a file holding it)',
  });

/**
 * repository.encryption: new objects are sealed with keyId's key; objects of
 * the keys in `previous` stay readable (rotation). readUnencrypted serves
 * objects written before encryption was turned on (off: a plaintext object is refused).
 */
export const Encryption = z
  .strictObject(
    {
      keyId: z.string({ error: KEY_ID }).regex(/^[A-Za-z0-9._-]{1,32}$/, { error: KEY_ID }),
      keyEnv: envName.optional(),
      keyFile: absolutePath('the key file').optional(),
      previous: z.array(EncryptionKey, { error: 'expected a list of { keyId, keyEnv } mappings' }).optional(),
      readUnencrypted: z.boolean({ error: 'expected true or false' }).optional(),
    },
    { error: 'expected a mapping with keyId and keyEnv (or keyFile), and optionally previous' },
  )
  .refine((k) => (k.keyEnv === undefined) !== (k.keyFile === undefined), {
    error: 'expected exactly one of keyEnv (an environment variable holding the key) and keyFile (a file holding it)',
  })
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
  },
  { error: 'expected a mapping with url (and for s3://, endpointEnv)' },
);

export const RestoreMode = z.enum(['side-by-side', 'in-place'], {
  error: 'expected "side-by-side" or "in-place"',
});

const EXTRACTORS = 'expected a whole number of extractors from 1 to 64';

export const Restore = z.strictObject(
  {
    host: identifier('a host name'),
    dataDir: absolutePath('the data directory'),
    port,
    mode: RestoreMode.default('side-by-side'),
    /**
     * Extension: the address clients (pgbouncer, invariant checks) use to reach
     * the restored instance. The restore host's worker connects through it too.
     */
    address: nonEmpty('a host name or address').default('127.0.0.1'),
    /**
     * Extension: copies of the primary's postgresql.conf and pg_hba.conf on the
     * restore host, used when the base backup has none (packaged installs keep
     * them in /etc).
     */
    confFile: absolutePath("a copy of the primary's postgresql.conf").optional(),
    hbaFile: absolutePath("a copy of the primary's pg_hba.conf").optional(),
    /**
     * Extension: parts of a base backup extracted at once on this host
     * (restores, drills, the standby); default one per core, at least 2.
     * Lower it on a host whose cores serve something else during a restore.
     */
    parallel: z
      .number({ error: EXTRACTORS })
      .int({ error: EXTRACTORS })
      .min(1, { error: EXTRACTORS })
      .max(64, { error: EXTRACTORS })
      .optional(),
  },
  { error: 'expected a mapping with host, dataDir, port and mode (and optionally address)' },
);

const gate = z.strictObject({ gate: nonEmpty('a gate name') });

export const Gates = z.strictObject({
  table: nonEmpty('a table name').default('system_gate'),
  writers: z.strictObject({
    gate: nonEmpty('a gate name').default('writers'),
    readOnlyRoles: z.array(nonEmpty('a role name'), { error: 'expected a list of role names' }).min(1, {
      error: 'expected at least one application role',
    }),
    /**
     * Extension: the variable holding the password of the first application
     * role, for the login that proves the gate (a write that must fail).
     * Without it the proof logs in without a password (trust or cert in pg_hba).
     */
    proofPasswordEnv: envName.optional(),
  }),
  backgroundJobs: gate.optional(),
  outbox: z
    .strictObject({
      gate: nonEmpty('a gate name'),
      table: nonEmpty('a table name'),
      idColumn: nonEmpty('a column name').default('id'),
      publishedColumn: nonEmpty('a column name').default('published_at'),
    })
    .optional(),
});

const namedSql = z.strictObject({ name: nonEmpty('a name'), sql: nonEmpty('an SQL statement') });

export const Invariant = z.strictObject({
  name: nonEmpty('a name'),
  sql: nonEmpty('an SQL query returning one value'),
  expect: z.union([z.string(), z.number(), z.boolean()], {
    error: 'expected the value the query must return (a number, string or boolean)',
  }),
});

/**
 * Extension: what preflight does when a cache or traffic endpoint does not
 * answer. refuse (the default): the run ends before anything is fenced.
 * warn: preflight notes it in the run's evidence and the run goes on, for an
 * endpoint that may well be down in the very incident (a cache in the lost
 * region); its step still fails if it cannot do its work then.
 */
const preflightMode = z
  .enum(['refuse', 'warn'], {
    error:
      'expected refuse (the default: no recovery starts while this endpoint does not answer) or warn (preflight notes it and the run goes on; the step itself still needs it)',
  })
  .optional();

const commandArgv = z
  .array(nonEmpty('an argument'), { error: 'expected a list: the program, then its arguments' })
  .min(1, { error: 'expected at least the program to run' });

export const Cache = z.union(
  [
    z.strictObject({
      redis: z.strictObject({
        urlEnv: envName,
        patterns: z
          .array(nonEmpty('a key pattern'), { error: 'expected a list of key patterns such as "orders:*"' })
          .min(1, { error: 'expected at least one key pattern such as "orders:*"' }),
        preflight: preflightMode,
      }),
    }),
    z.strictObject({
      http: z.strictObject({
        urlEnv: envName,
        method: z.enum(['POST', 'PURGE', 'DELETE'], { error: 'expected POST, PURGE or DELETE' }).default('POST'),
        preflight: preflightMode,
      }),
    }),
    z.strictObject({ command: z.strictObject({ argv: commandArgv, preflight: preflightMode }) }),
  ],
  { error: 'expected one of { redis: {...} }, { http: {...} } or { command: {...} }' },
);

export const Traffic = z.union(
  [
    z.strictObject({
      pgbouncer: z.strictObject({
        adminUrlEnv: envName,
        database: nonEmpty('a database name'),
        /**
         * Extension: the file pgbouncer.ini includes (`%include`) for this
         * database's line; Lifeboat rewrites that line to point at the
         * promoted instance before RELOAD. Written by the worker of `host`.
         */
        databasesFile: absolutePath('the pgbouncer databases file'),
        /** The host whose worker can write databasesFile; defaults to restore.host. */
        host: identifier('a host name').optional(),
        preflight: preflightMode,
      }),
    }),
    z.strictObject({ command: z.strictObject({ argv: commandArgv, preflight: preflightMode }) }),
  ],
  { error: 'expected { pgbouncer: {...} } or { command: {...} }' },
);

export const ApprovalPolicy = z
  .strictObject(
    {
      approvers: z.array(identifier('an approver name'), { error: 'expected a list of approver names' }).min(1, {
        error: 'expected at least one approver',
      }),
      min: z
        .number({ error: 'expected an integer of at least 1' })
        .int({ error: 'expected an integer of at least 1' })
        .min(1, { error: 'expected an integer of at least 1' })
        .default(1),
      escalateAfter: duration.optional(),
    },
    { error: 'expected a mapping with approvers (and optionally min, escalateAfter)' },
  )
  .superRefine((p, ctx) => {
    const distinct = new Set(p.approvers).size;
    // With no approvers the list itself is reported; a second line about min would only confuse.
    if (distinct > 0 && p.min > distinct) {
      ctx.addIssue({
        code: 'custom',
        path: ['min'],
        message: `expected at most ${distinct} (the number of distinct approvers), or no decision could ever pass`,
      });
    }
  });

/** Steps that may ever be skipped; restore, replay, promote and evidence never can. */
export const SKIPPABLE_STEP_IDS = [
  'capture-forensics',
  'disable-writers',
  'disable-background-jobs',
  'pause-outbox',
  'run-invariants',
  'reconcile-outbox',
  'invalidate-caches',
  'resume-traffic',
  'enable-background-jobs',
  'resume-outbox',
] as const;

export const APPROVAL_STEPS = ['approve-fence', 'approve-promote', 'approve-resume', 'approve-repair'] as const;

/** `approve-resume: false` turns the resume approval off (it is on by default). */
export const Approvals = z.partialRecord(
  z.enum(APPROVAL_STEPS, { error: `expected one of ${APPROVAL_STEPS.join(', ')}` }),
  // Not a z.union: a union reports only that no branch matched, and the
  // operator would lose the path of the bad field inside the policy.
  z.unknown().transform((value, ctx): z.output<typeof ApprovalPolicy> | false => {
    if (value === false) return false;
    const parsed = ApprovalPolicy.safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues)
      ctx.addIssue({ ...issue, code: 'custom', message: issue.message, path: issue.path } as never);
    return z.NEVER;
  }),
);

/**
 * Steps an operator may skip when they fail. The gate steps are there by
 * default: when the primary is the thing that died, they cannot succeed.
 */
export const DEFAULT_SKIPPABLE = [
  'capture-forensics',
  'disable-writers',
  'disable-background-jobs',
  'pause-outbox',
  'invalidate-caches',
] as const;

const seconds = z
  .number({ error: 'expected a positive whole number of seconds' })
  .int({ error: 'expected a positive whole number of seconds' })
  .positive({ error: 'expected a positive whole number of seconds' });

export const Objectives = z.strictObject(
  { rpoSeconds: seconds, rtoSeconds: seconds },
  { error: 'expected a mapping with rpoSeconds and rtoSeconds' },
);

export const Drill = z.strictObject({
  host: identifier('a host name'),
  dataDir: absolutePath('the drill data directory'),
  port,
  targetWindow: duration.default(24 * 3600),
});

/** A delay of 0 (no delay) or more: "1h", "10m", "90s", 0. */
const delay = z
  .union([z.string(), z.number()], { error: 'expected a delay such as "1h", "10m" or 0 (no delay)' })
  .transform((v, ctx) => {
    const seconds = parseDurationSeconds(v);
    if (seconds === undefined || !Number.isInteger(seconds)) {
      ctx.addIssue({ code: 'custom', message: 'expected a delay such as "1h", "10m" or 0 (no delay)' });
      return z.NEVER;
    }
    return seconds;
  });

/**
 * Extension (DESIGN.md §4.4): a warm standby Lifeboat builds from a backup and
 * keeps replaying from the archive, `delay` behind (recovery_min_apply_delay).
 * For now it lives on restore.host: a recovery that uses it moves its data
 * directory into restore.dataDir (a rename, so the same file system), where
 * every later step expects the restored copy.
 */
export const Standby = z.strictObject(
  {
    host: identifier('a host name'),
    dataDir: absolutePath('the standby data directory'),
    port,
    delay,
    /** Segments the standby may trail the archive's newest by before `lifeboat check` calls it fallen behind. */
    maxLagSegments: z
      .number({ error: 'expected a whole number of WAL segments of at least 1' })
      .int({ error: 'expected a whole number of WAL segments of at least 1' })
      .min(1, { error: 'expected a whole number of WAL segments of at least 1' })
      .optional(),
  },
  { error: 'expected a mapping with host, dataDir, port and delay (and optionally maxLagSegments)' },
);

export const Backup = z.strictObject({
  /** The host whose worker runs pg_basebackup (its `lifeboat-host-<host>` queue). */
  host: identifier('a host name').optional(),
  /**
   * How many full backups `expireBackups` keeps (2 when neither this nor
   * `retention:` is set; src/catalog/tiers.ts retentionPolicy).
   */
  retainFull: z
    .number({ error: 'expected an integer of at least 1' })
    .int({ error: 'expected an integer of at least 1' })
    .min(1, { error: 'expected an integer of at least 1' })
    .optional(),
  /** Where the backup is staged and verified before upload. */
  scratchDir: absolutePath('the scratch directory').optional(),
});

const tierCount = (period: string) =>
  z
    .number({ error: `expected a whole number of ${period}s of at least 1` })
    .int({ error: `expected a whole number of ${period}s of at least 1` })
    .min(1, { error: `expected a whole number of ${period}s of at least 1` })
    .optional();

/**
 * Tiered retention (src/catalog/tiers.ts): in each of the last N UTC days,
 * ISO weeks, months or years, the newest verified backup is kept; `wal` is
 * how far back point-in-time recovery stays possible. Replaces backup.retainFull.
 */
export const Retention = z.strictObject(
  {
    full: z
      .strictObject(
        { daily: tierCount('day'), weekly: tierCount('week'), monthly: tierCount('month'), yearly: tierCount('year') },
        { error: 'expected a mapping of tiers: daily, weekly, monthly, yearly (each a number of periods)' },
      )
      .refine((f) => Object.values(f).some((n) => n !== undefined), {
        error: 'expected at least one of daily, weekly, monthly, yearly',
      }),
    wal: duration,
  },
  { error: 'expected a mapping with full ({ daily, weekly, monthly, yearly }) and wal (a duration such as "35d")' },
);

export const Runbook = z
  .strictObject({
    name: identifier('a runbook name'),
    cluster: Cluster,
    /** One repository; or `repositories:` (a list), never both. */
    repository: Repository.optional(),
    /** Several repositories, tried in this order by recoveries and drills; the first is the primary one. */
    repositories: z
      .array(Repository, { error: 'expected a list of repositories ({ name, url, ... })' })
      .min(1, { error: 'expected a list of at least one repository' })
      .optional(),
    /**
     * When archive-push succeeds with several repositories: `all` (every
     * repository has the segment) or `primary` (the first has it; the others
     * get it later from the catch-up queue, src/wal/catchup.ts).
     */
    repositoryPolicy: z.enum(['all', 'primary'], { error: 'expected "all" or "primary"' }).default('all'),
    restore: Restore,
    backup: Backup.default({}),
    retention: Retention.optional(),
    gates: Gates.optional(),
    capture: z.array(namedSql, { error: 'expected a list of { name, sql }' }).default([]),
    invariants: z.array(Invariant, { error: 'expected a list of { name, sql, expect }' }).default([]),
    caches: z
      .array(Cache, { error: 'expected a list of caches ({ redis: ... }, { http: ... } or { command: ... })' })
      .default([]),
    traffic: Traffic.optional(),
    approvals: Approvals.default({}),
    /** Extension: step ids an operator may skip after a failure (DESIGN.md §4.1). */
    skippable: z
      .array(
        z.enum(SKIPPABLE_STEP_IDS, {
          error: `expected a step id that can be skipped: ${SKIPPABLE_STEP_IDS.join(', ')}`,
        }),
        { error: 'expected a list of step ids' },
      )
      .default([...DEFAULT_SKIPPABLE]),
    objectives: Objectives,
    drill: Drill.optional(),
    notify: z
      .strictObject(
        {
          webhookUrlEnv: envName.optional(),
          /** Extension: approval messages with Approve / Reject buttons, posted to a Slack channel's incoming webhook (README "Chat-ops"). */
          slack: z
            .strictObject(
              { webhookUrlEnv: envName },
              {
                error:
                  "expected a mapping with webhookUrlEnv (the variable holding the channel's incoming-webhook URL)",
              },
            )
            .optional(),
        },
        { error: 'expected a mapping with webhookUrlEnv and/or slack: { webhookUrlEnv }' },
      )
      .refine((n) => n.webhookUrlEnv !== undefined || n.slack !== undefined, {
        error: 'expected webhookUrlEnv, slack: { webhookUrlEnv }, or both',
      })
      .optional(),
    standby: Standby.optional(),
    /** Extension: the backup engine (src/runbook/engine.ts); left out, Lifeboat's own repository. */
    engine: Engine.optional(),
  })
  .superRefine((rb, ctx) => repositoriesOneWay(rb, ctx))
  .superRefine((rb, ctx) => s3OnlySettings(rb, ctx))
  .superRefine((rb, ctx) => standbyApart(rb, ctx))
  .superRefine((rb, ctx) => {
    if (rb.retention && rb.backup.retainFull !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['backup', 'retainFull'],
        message:
          'expected either retention or backup.retainFull, not both (retention: tiers replace backup.retainFull; remove it)',
      });
    }
  })
  .superRefine((rb, ctx) => {
    if (!rb.drill || rb.drill.host !== rb.restore.host) return;
    // Same host: a drill must not touch what a real recovery uses.
    if (rb.drill.dataDir === rb.restore.dataDir) {
      ctx.addIssue({
        code: 'custom',
        path: ['drill', 'dataDir'],
        message: `expected a directory other than restore.dataDir on host ${rb.restore.host} (a drill there would overwrite a recovery)`,
      });
    }
    if (rb.drill.port === rb.restore.port) {
      ctx.addIssue({
        code: 'custom',
        path: ['drill', 'port'],
        message: `expected a port other than restore.port on host ${rb.restore.host} (the drill instance could not start beside a recovery)`,
      });
    }
  })
  // Existing code reads `runbook.repository`: it is the first of the list.
  .transform((rb) => {
    const repositories: RepositoryEntry[] = rb.repositories
      ? namedRepositories(rb.repositories).map((r, i) => ({ ...r, runbookField: `repositories[${i}]` }))
      : namedRepositories(rb.repository ? [rb.repository] : []).map((r) => ({ ...r, runbookField: 'repository' }));
    return { ...rb, repository: repositories[0]!, repositories };
  });

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

/** Exactly one of repository: and repositories:, names unique. */
function repositoriesOneWay(
  rb: {
    repository?: z.output<typeof Repository> | undefined;
    repositories?: Array<z.output<typeof Repository>> | undefined;
  },
  ctx: z.RefinementCtx,
): void {
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
  const seen = new Map<string, number>();
  const named = namedRepositories(rb.repositories ?? []);
  named.forEach((r, i) => {
    const first = seen.get(r.name);
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['repositories', i, 'name'],
        message: `expected a name not used by repositories[${first}]`,
      });
    } else seen.set(r.name, i);
  });
  const urls = new Map<string, number>();
  named.forEach((r, i) => {
    const first = urls.get(r.url);
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['repositories', i, 'url'],
        message: `expected a URL other than repositories[${first}]'s (the same repository twice is no second copy)`,
      });
    } else urls.set(r.url, i);
  });
}

/** serverSide and objectLock are S3 features: on a file:// repository they would silently protect nothing. */
function s3OnlySettings(
  rb: {
    repository?: z.output<typeof Repository> | undefined;
    repositories?: Array<z.output<typeof Repository>> | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const entries: Array<[Array<string | number>, z.output<typeof Repository>]> = rb.repositories
    ? rb.repositories.map((r, i) => [['repositories', i], r])
    : rb.repository
      ? [[['repository'], rb.repository]]
      : [];
  for (const [at, r] of entries) {
    if (r.url.startsWith('s3://')) continue;
    for (const key of ['serverSide', 'objectLock'] as const) {
      if (!r[key]) continue;
      ctx.addIssue({
        code: 'custom',
        path: [...at, key],
        message: `expected no ${key} on a ${r.url.split(':')[0]}:// repository: it is an S3 setting (s3://bucket/prefix); a file system's own encryption and immutability are set up outside Lifeboat`,
      });
    }
  }
}

/** `a` is `b` or lies inside it (or the other way round): one directory would hold the other. */
function nested(a: string, b: string): boolean {
  const x = a.replace(/\/+$/, '');
  const y = b.replace(/\/+$/, '');
  return x === y || x.startsWith(`${y}/`) || y.startsWith(`${x}/`);
}

/** The standby never shares a directory or a port with the restore or the drill on its host. */
function standbyApart(
  rb: {
    restore: z.output<typeof Restore>;
    drill?: z.output<typeof Drill> | undefined;
    standby?: z.output<typeof Standby> | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  const s = rb.standby;
  if (!s) return;
  if (s.host !== rb.restore.host) {
    ctx.addIssue({
      code: 'custom',
      path: ['standby', 'host'],
      message: `expected restore.host (${rb.restore.host}): a recovery that uses the standby moves its data directory into restore.dataDir on that host`,
    });
    return;
  }
  const others: Array<{ field: string; dataDir: string; port: number; why: string }> = [
    { field: 'restore', dataDir: rb.restore.dataDir, port: rb.restore.port, why: 'a recovery' },
    ...(rb.drill && rb.drill.host === s.host
      ? [{ field: 'drill', dataDir: rb.drill.dataDir, port: rb.drill.port, why: 'a drill' }]
      : []),
  ];
  for (const o of others) {
    if (nested(s.dataDir, o.dataDir)) {
      ctx.addIssue({
        code: 'custom',
        path: ['standby', 'dataDir'],
        message: `expected a directory apart from ${o.field}.dataDir (${o.dataDir}) on host ${s.host} (${o.why} there would overwrite the standby)`,
      });
    }
    if (s.port === o.port) {
      ctx.addIssue({
        code: 'custom',
        path: ['standby', 'port'],
        message: `expected a port other than ${o.field}.port on host ${s.host} (the standby and ${o.why} could not both listen there)`,
      });
    }
  }
}

export type Runbook = z.output<typeof Runbook>;
export type RunbookInput = z.input<typeof Runbook>;

/** The cluster's name in the repository. */
export function clusterName(rb: Runbook): string {
  return rb.cluster.name ?? rb.name;
}

/** The host whose worker takes base backups. */
export function backupHost(rb: Runbook): string {
  return rb.backup.host ?? rb.restore.host;
}

export function hostQueue(host: string): string {
  return `lifeboat-host-${host}`;
}

export const TASK_QUEUE = 'lifeboat';
