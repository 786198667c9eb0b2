// How a failed repair transaction (apply.ts applyPlans) reads to an operator:
// which repair and tables, where it stopped, that nothing was applied (the
// transaction rolled back), and what to check or do. A lost connection is
// told apart from a refusal: the transaction may then have committed, and
// only a retry with the same repair id can say (through the audit rows).
import { LifeboatError, errorMessage } from '../errors';

/** A failed transaction as an operator reads it: which repair and tables, where it stopped, what to do. */
export function applyFailure(
  err: unknown,
  ctx: { repairId: string; named: string[]; at: string; cycle: string[]; lockTimeoutMs: number | undefined },
): LifeboatError {
  const pgErr = err as { code?: string; constraint?: string; detail?: string };
  const one = ctx.named.length === 1;
  const of = `repair ${ctx.repairId} of ${ctx.named.join(', ')}`;
  const cause = `${errorMessage(err)}${pgErr.detail ? ` (${pgErr.detail})` : ''}`;
  // The connection lost (no SQLSTATE, or the server ended the session): the
  // transaction did not commit unless COMMIT itself was in flight; either
  // way a retry with the same repair id finds out from the audit rows.
  if (!pgErr.code || /^(08|57P)/.test(pgErr.code)) {
    return new LifeboatError(
      'PG_UNREACHABLE',
      `${of} lost its connection to the primary${one ? '' : ` at ${ctx.at}`}: ${cause}`,
      {
        cause: err,
        hints: [
          `apply again with the same repair id: it restores the rows if the transaction did not commit, and says "already applied" ${one ? '' : 'for every table '}if it did`,
        ],
        details: { sqlstate: pgErr.code },
      },
    );
  }
  const hints =
    pgErr.code === '23503'
      ? [
          `foreign key ${pgErr.constraint ?? '?'}: a restored row refers to a row deleted since (or a row deleted since refers to it); restore the parent rows first (repair that table too) or exclude these keys`,
          ...(ctx.cycle.length > 0
            ? [
                `the foreign keys between ${ctx.cycle.join(', ')} form a cycle and are NOT DEFERRABLE, so no order restores both sides: make them DEFERRABLE (ALTER TABLE ... ALTER CONSTRAINT ... DEFERRABLE; the repair then defers them to its commit) or repair these tables in separate runs`,
              ]
            : []),
        ]
      : pgErr.code === '55P03'
        ? [
            `a row or table lock was not granted within lock_timeout (${ctx.lockTimeoutMs ?? "the role's"} ms): a long transaction holds rows of the table; find it in pg_stat_activity, then apply again`,
          ]
        : pgErr.code === '42501'
          ? [
              `the role lacks a privilege for the repair: SELECT, INSERT, UPDATE on the table, SELECT, UPDATE on its sequences, TEMPORARY on the database, CREATE on the audit schema; lifeboat grants --runbook <name> --repair-tables ${ctx.named.join(',')} prints them`,
            ]
          : ['the primary is unchanged: fix the cause and apply again (the same repair id is safe to retry)'];
  const what = one
    ? `${of} failed and was rolled back, nothing applied: ${cause}`
    : `${of} failed at ${ctx.at} and was rolled back, nothing applied to any of the ${ctx.named.length} tables: ${cause}`;
  return new LifeboatError(pgErr.code === '42501' ? 'PRIVILEGE_MISSING' : 'SQL_FAILED', what, {
    cause: err,
    hints,
    details: { sqlstate: pgErr.code },
  });
}
