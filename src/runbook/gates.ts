// The runbook's `gates:` (DESIGN.md §5): the table of switches the fence
// steps turn, for writers (proven by a refused write), background jobs and
// the outbox publisher.
//
// Bundled into workflow code with schema.ts: zod only, no Node builtins.
import { z } from 'zod';
import { envName, nonEmpty } from './fields';

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
