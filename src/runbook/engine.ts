// The runbook's `engine:` block (README "Using pgBackRest as the backup
// engine"): which tool holds the cluster's base backups and WAL archive.
// Left out, it is Lifeboat's own repository (archive-push/archive-get,
// baseBackup). `kind: pgbackrest` names an existing pgBackRest stanza;
// Lifeboat then drives pgBackRest through its commands and never reads its
// repository's files.
//
// Secrets (repository cipher passphrase, S3 keys) stay in pgBackRest's own
// configuration file or its PGBACKREST_* environment variables: this block
// only names the stanza, the configuration file and the repository index.
//
// Imported by schema.ts, so by workflow code too: zod only, no Node builtins.
import { z } from 'zod';

/** pgBackRest stanza names: letters, digits, '.', '_' and '-' (what its option parser accepts without quoting). */
const STANZA_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const LifeboatEngine = z.strictObject({
  kind: z.literal('lifeboat'),
});

export const PgBackRestEngine = z.strictObject({
  kind: z.literal('pgbackrest'),
  /** The stanza (pgBackRest's name for one cluster's backups), as in its configuration file. */
  stanza: z
    .string({ error: 'expected the pgBackRest stanza name, e.g. main (the [main] section of pgbackrest.conf)' })
    .regex(STANZA_RE, {
      error: "expected the pgBackRest stanza name: letters, digits, '.', '_' or '-', at most 64 characters",
    }),
  /** pgbackrest --config; left out, pgBackRest's default (/etc/pgbackrest/pgbackrest.conf). */
  configPath: z
    .string({ error: 'expected the pgBackRest configuration file as an absolute path' })
    .refine((p) => p.startsWith('/'), {
      error: 'expected the pgBackRest configuration file as an absolute path (starting with /)',
    })
    .optional(),
  /** pgbackrest --repo: which of the stanza's repositories (repo1-, repo2- options) restores read; left out, pgBackRest picks. */
  repo: z
    .number({
      error: 'expected the pgBackRest repository index, an integer from 1 to 256 (the N of its repoN- options)',
    })
    .int({ error: 'expected the pgBackRest repository index, an integer from 1 to 256 (the N of its repoN- options)' })
    .min(1, {
      error: 'expected the pgBackRest repository index, an integer from 1 to 256 (the N of its repoN- options)',
    })
    .max(256, {
      error: 'expected the pgBackRest repository index, an integer from 1 to 256 (the N of its repoN- options)',
    })
    .optional(),
  /**
   * pgbackrest restore --delta: only files that differ are written. Off by
   * default: delta overwrites a directory in place, and Lifeboat never
   * overwrites data it has not moved aside first.
   */
  delta: z.boolean({ error: 'expected true or false' }).optional(),
});

export const Engine = z.discriminatedUnion('kind', [LifeboatEngine, PgBackRestEngine], {
  error:
    'expected a mapping with kind: lifeboat (the default) or kind: pgbackrest with stanza (and optionally configPath, repo, delta)',
});
export type EngineSetting = z.output<typeof Engine>;
export type PgBackRestSetting = z.output<typeof PgBackRestEngine>;

/** The engine a runbook uses: Lifeboat's own when it says nothing. */
export function engineSetting(rb: { engine?: EngineSetting | undefined }): EngineSetting {
  return rb.engine ?? { kind: 'lifeboat' };
}
