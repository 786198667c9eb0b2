// What a recovery calls outside PostgreSQL once the copy is promoted:
// `caches:` it invalidates (Redis, HTTP, a command) and `traffic:` it points at
// the copy (pgbouncer, a command), with what preflight does when one of them
// does not answer.
//
// Bundled into workflow code with schema.ts: zod only, no Node builtins.
import { z } from 'zod';
import { absolutePath, envName, identifier, nonEmpty } from './fields';

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
