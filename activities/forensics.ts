// capture-forensics (DESIGN.md §4.1 step 2): before the restore erases it,
// record what the old primary holds that the restored copy will not: the
// outbox high-water mark (reconcile-outbox needs it so nothing is published
// twice) and the rows of the runbook's `capture` queries, as evidence.
// The primary may be the thing that died: then there is nothing to capture,
// which is recorded, not failed.
import type { Client } from 'pg';
import { errorMessage, isLifeboatError } from '../src/errors';
import { primaryEndpoint } from '../src/gates';
import { inTransaction, quoteIdent, quoteQualified, sqlFailed, withClient } from '../src/gates/sql';
import type { CaptureResult, Target } from '../src/recovery/contract';
import { loadRunbookWithPrimary } from '../src/catalog/primary';
import type { Runbook } from '../src/runbook/schema';
import { lifeboatActivity } from './failure';

/** Rows kept per capture query. */
const CAPTURE_MAX_ROWS = 1000;
/**
 * JSON bytes kept per capture query: the result travels through workflow
 * history, where one payload over 2 MB fails the activity outright, so a
 * capture of wide rows is cut short (truncated) well before that.
 */
const CAPTURE_MAX_BYTES = 256 * 1024;
const CAPTURE_TIMEOUT = '30s';

type Capture = CaptureResult['captures'][number];

/**
 * Step 2: the outbox high-water mark and the runbook's capture queries on the
 * old primary. Run twice: read-only transactions, so a second run reads
 * again (the mark may have moved on if the primary still publishes, and the
 * later, higher mark is the one to keep).
 */
export async function captureForensics(input: { runbook: string; target: Target }): Promise<CaptureResult> {
  return lifeboatActivity(async () => {
    // The primary now: re-pointed by an earlier side-by-side recovery's overlay, if any.
    const { runbook } = await loadRunbookWithPrimary(input.runbook);
    const capturedAt = new Date().toISOString();
    const targetTime = 'time' in input.target ? input.target.time : null;
    try {
      return await withClient(primaryEndpoint(runbook), async (client) => {
        const outboxHighWater = await readHighWater(client, runbook);
        const captures: Capture[] = [];
        for (const q of runbook.capture) captures.push(await runCapture(client, q, targetTime));
        return {
          capturedAt,
          primaryReachable: true,
          ...(outboxHighWater === undefined ? {} : { outboxHighWater }),
          captures,
        };
      });
    } catch (err) {
      if (isLifeboatError(err) && err.code === 'PG_UNREACHABLE')
        return { capturedAt, primaryReachable: false, captures: [] };
      throw err;
    }
  });
}

/**
 * max(id) of the rows the old primary already published. Failing here is
 * fatal on purpose: without the mark, reconcile-outbox cannot tell which
 * restored rows were already sent, and they would be sent twice.
 */
async function readHighWater(client: Client, runbook: Runbook): Promise<string | undefined> {
  const outbox = runbook.gates?.outbox;
  if (!outbox) return undefined;
  const sql = `select max(${quoteIdent(outbox.idColumn)})::text as high from ${quoteQualified(outbox.table)} where ${quoteIdent(outbox.publishedColumn)} is not null`;
  try {
    const { rows } = await inTransaction(client, 'begin read only', () => client.query<{ high: string | null }>(sql));
    return rows[0]?.high ?? undefined;
  } catch (err) {
    throw sqlFailed(`could not read the outbox high-water mark (${sql})`, err, [
      'check gates.outbox (table, idColumn, publishedColumn) in the runbook',
      'without the mark reconcile-outbox marks nothing, and rows published before the incident may be published again',
    ]);
  }
}

/**
 * One capture query, read-only with a time limit, through a cursor: the
 * first rows are kept and the rest only counted, so a query that matches
 * millions of rows neither fills the worker's memory nor the history.
 */
async function runCapture(
  client: Client,
  q: { name: string; sql: string },
  targetTime: string | null,
): Promise<Capture> {
  // $1 is bound only when the query uses it: PostgreSQL rejects a parameter
  // the statement does not reference.
  const params = /\$1(?!\d)/.test(q.sql) ? [targetTime] : [];
  try {
    return await inTransaction(client, 'begin read only', async () => {
      await client.query(`set local statement_timeout = '${CAPTURE_TIMEOUT}'`);
      await client.query(`declare lifeboat_capture no scroll cursor for ${q.sql.trim().replace(/;\s*$/, '')}`, params);
      const fetched = await client.query(`fetch forward ${CAPTURE_MAX_ROWS} from lifeboat_capture`);
      const rest = await client.query('move forward all in lifeboat_capture');
      const rowCount = fetched.rows.length + (rest.rowCount ?? 0);
      const rows = keepWithinBudget(fetched.rows);
      return { name: q.name, rowCount, rows, truncated: rows.length < rowCount };
    });
  } catch (err) {
    return { name: q.name, rowCount: 0, rows: [], truncated: false, error: errorMessage(err) };
  }
}

/** Rows as plain JSON (dates as ISO text), cut at the byte budget. */
function keepWithinBudget(rows: unknown[]): unknown[] {
  const kept: unknown[] = [];
  let bytes = 0;
  for (const row of rows) {
    const json = JSON.stringify(row);
    bytes += json.length;
    if (bytes > CAPTURE_MAX_BYTES) break;
    kept.push(JSON.parse(json));
  }
  return kept;
}
