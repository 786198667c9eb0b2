// The runbook's `cluster:`: the primary Lifeboat protects (how to reach it;
// its password named by environment variable), its name in the repository,
// and where PostgreSQL's programs are.
//
// Bundled into workflow code with schema.ts: zod only, no Node builtins.
import { z } from 'zod';
import { absolutePath, envName, identifier, nonEmpty, port } from './fields';

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
