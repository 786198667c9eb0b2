// reconcile-outbox (DESIGN.md §4.1 step 12): on the promoted instance, the
// outbox rows the old primary had already published (id at or below the
// high-water mark captured before the restore) came back unpublished, since
// the restore predates their publication. They are marked published before
// the publisher resumes, so nothing is sent twice.
import { restoredEndpoint } from '../src/gates';
import { inTransaction, quoteIdent, quoteQualified, sqlFailed, withClient } from '../src/gates/sql';
import type { OutboxResult } from '../src/recovery/contract';
import { loadRunbook } from '../src/runbook/load';
import { lifeboatActivity } from './failure';

/**
 * Step 12. Run twice: the UPDATE only touches rows still unpublished at or
 * below the mark, so a second run marks none of the rows the first marked.
 * A dead attempt's UPDATE, once unblocked, rolls back with its transaction
 * when it finds its client gone, or has committed; either way the rows end
 * published exactly once, though a retry then reports only what it marked.
 */
export async function reconcileOutbox(input: { runbook: string; highWater?: string }): Promise<OutboxResult> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    const outbox = runbook.gates?.outbox;
    if (!outbox)
      return { markedPublished: 0, skippedReason: `runbook ${runbook.name} configures no outbox (gates.outbox)` };
    const { table } = outbox;
    const { highWater } = input;
    if (highWater === undefined || highWater === '') {
      return {
        table,
        markedPublished: 0,
        skippedReason: 'no high-water mark was captured (the primary did not answer, or had published no outbox rows)',
      };
    }
    const id = quoteIdent(outbox.idColumn);
    const published = quoteIdent(outbox.publishedColumn);
    // $1 takes the id column's type from the comparison, so a bigint, numeric
    // or text id compares as that type, not as JavaScript would.
    const sql = `update ${quoteQualified(table)} set ${published} = now() where ${id} <= $1 and ${published} is null`;
    const marked = await withClient(restoredEndpoint(runbook), async (client) => {
      try {
        return await inTransaction(client, 'begin', () => client.query(sql, [highWater]));
      } catch (err) {
        throw sqlFailed(`could not mark outbox rows up to ${outbox.idColumn} ${highWater} as published (${sql})`, err, [
          'this must run on the promoted instance, before the outbox publisher resumes',
        ]);
      }
    });
    return { table, highWater, markedPublished: marked.rowCount ?? 0 };
  });
}
