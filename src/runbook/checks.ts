// What a recovery reads and checks: `capture:` queries (run on the old
// primary before the restore erases what they show), `invariants:` (run on
// the paused copy before promotion) and `objectives:` (the RPO and RTO the
// evidence is measured against).
//
// Bundled into workflow code with schema.ts: zod only, no Node builtins.
import { z } from 'zod';
import { nonEmpty } from './fields';

/** One `capture:` query: its rows go into the evidence before the restore erases them. */
export const namedSql = z.strictObject({ name: nonEmpty('a name'), sql: nonEmpty('an SQL statement') });

export const Invariant = z.strictObject({
  name: nonEmpty('a name'),
  sql: nonEmpty('an SQL query returning one value'),
  expect: z.union([z.string(), z.number(), z.boolean()], {
    error: 'expected the value the query must return (a number, string or boolean)',
  }),
});

const seconds = z
  .number({ error: 'expected a positive whole number of seconds' })
  .int({ error: 'expected a positive whole number of seconds' })
  .positive({ error: 'expected a positive whole number of seconds' });

export const Objectives = z.strictObject(
  { rpoSeconds: seconds, rtoSeconds: seconds },
  { error: 'expected a mapping with rpoSeconds and rtoSeconds' },
);
