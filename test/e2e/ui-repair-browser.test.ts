// The Temporal UI path of a repair without failover, in a real browser
// (Debian's chromium driven by playwright-core): a dev server of its own with
// the UI, a real test cluster, and workers polling `lifeboat` and the host
// queue. The seed's incident on the demo schema, small: a bad `UPDATE orders
// SET status = 'canceled' WHERE status = 'pending'` between two restore
// points, then legitimate writes (new orders, one cancelled order edited
// again, an untouched order edited, an outbox row). In the UI: start
// repairFromPointInTime from the Start Workflow form; once the status query
// says approve-repair waits, the run's page shows the diff's counts per class
// and the signal JSON to approve with; send `approve` from the signal dialog
// as the runbook's approver; the run completes. On the database: exactly the
// damaged rows restored, the conflict and every later write kept.
// Screenshots: test-artifacts/ui/repair-*.png.
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { runPage } from '../../src/cli/ui-link';
import { DEMO_SCHEMA_SQL } from '../../src/dev/demo-runbook';
import type { Evidence, RecoveryStatus } from '../../src/recovery/contract';
import { statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import { startWorkers } from '../../src/worker';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTestCluster } from '../harness/cluster';
import { postgresTempDir, switchAndWaitArchived } from '../harness/postgres';
import { startOwnDevServer } from '../harness/dev-server';
import { freePort, waitFor } from '../harness/ports';
import {
  launchChromium,
  seeAfterReloads,
  sendSignal,
  shot,
  SHOTS,
  showsNow,
  startFromForm,
  visible,
} from '../harness/ui-page';

const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

describe('the Temporal UI path of a repair', () => {
  it(
    "starts repairFromPointInTime from the Start Workflow form, shows the diff's counts on the run's page, takes approve-repair from the signal dialog and restores exactly the damaged rows",
    { timeout: 600_000 },
    async () => {
      mkdirSync(SHOTS, { recursive: true });
      const scratch = postgresTempDir('ui-repair');
      cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
      const runbooksDir = path.join(scratch, 'runbooks');
      mkdirSync(runbooksDir);
      process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;

      // A dev server of our own, with the UI (the run's shared one is headless); the queue `lifeboat` is ours on it.
      const dev = await startOwnDevServer(async () => ({ port: await freePort(), uiPort: await freePort() }), {
        logFile: path.join(scratch, 'temporal.log'),
      });
      cleanups.push(() => dev.stop());
      const ui = `http://127.0.0.1:${dev.uiPort}`;

      const host = `uirepair${process.pid}`;
      const name = `ui-repair-${process.pid}`;
      // One approver: approve-repair takes approve-promote's approvers, quorum 1.
      const tc = await startTestCluster({ name, kind: 'file', runbooksDir, host, runbook: { approvers: ['alice'] } });
      cleanups.push(() => tc.stop());
      const runbook = await loadRunbook(name);
      expect(runbook.drill).toBeDefined();
      const pg = tc.pg;
      await pg.query(DEMO_SCHEMA_SQL);
      // 24 orders, every 4th pending (ids 4, 8, ..., 24).
      await pg.query(`insert into orders (customer, status, amount, updated_at)
      select 'customer ' || g, (array['pending','paid','shipped','canceled'])[g % 4 + 1], g * 2.5, '2026-01-01 00:00+00' from generate_series(0, 23) g`);
      await takeBaseBackup({ runbook });

      const rows = async (table: string) =>
        new Map(
          (
            await pg.query<{ id: string; j: string }>(
              `select id::text as id, to_jsonb(t)::text as j from ${table} t order by id`,
            )
          ).map((r) => [r.id, r.j]),
        );
      await pg.query(`select pg_create_restore_point('before-bad-update')`);
      const before = await rows('orders');
      const pendingIds = [...before.entries()]
        .filter(([, j]) => (JSON.parse(j) as { status: string }).status === 'pending')
        .map(([id]) => id);
      expect(pendingIds).toHaveLength(6);
      // The incident, then legitimate writes: two new orders, a cancelled order edited again (a conflict), an order the incident did not touch edited, an outbox row.
      await pg.query(`update orders set status = 'canceled' where status = 'pending'`);
      await pg.query(`select pg_create_restore_point('after-bad-update')`);
      const conflict = pendingIds[0]!;
      const untouched = [...before.keys()].find((id) => !pendingIds.includes(id))!;
      await pg.query(`
      insert into orders (customer, status, amount) values ('late customer', 'pending', 11), ('later customer', 'paid', 12);
      update orders set amount = 999 where id = ${conflict};
      update orders set amount = amount + 1 where id = ${untouched};
      insert into outbox (topic, payload) values ('orders', '{"written": "after the incident"}');`);
      await switchAndWaitArchived(pg);
      const now = await rows('orders');
      const outboxNow = await rows('outbox');
      const damaged = pendingIds.filter((id) => id !== conflict);

      const workers = await startWorkers({ address: dev.address, namespace: 'default', host });
      cleanups.push(() => workers.shutdown());
      const connection = await Connection.connect({ address: dev.address });
      cleanups.push(() => connection.close());
      const client = new TemporalClient({ connection });
      const browser: Browser = await launchChromium();
      cleanups.push(() => browser.close());
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      page.setDefaultTimeout(30_000);

      // 1. The Start Workflow form, with the input README's contract names.
      const workflowId = `repair-${name}`;
      const input = {
        runbook: name,
        tables: ['orders'],
        before: { name: 'before-bad-update' },
        after: { name: 'after-bad-update' },
        incident: 'INC-901',
        reason: 'bad UPDATE on orders, repaired from the Temporal UI',
      };
      await startFromForm(
        page,
        ui,
        {
          workflowId,
          taskQueue: 'lifeboat',
          workflowType: 'repairFromPointInTime',
          input,
          summary: `**INC-901** repair \`orders\` of \`${name}\``,
        },
        'repair-01-start-form',
      );
      const handle = client.workflow.getHandle(workflowId);
      await waitFor(
        'the run to start',
        async () => ((await handle.describe().catch(() => undefined)) ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect((await handle.describe()).type).toBe('repairFromPointInTime');

      // 2. The status query says when the diff waits for approval (or a step failed: shown, then the test fails).
      const s = await waitFor(
        'approve-repair to await approval (or a step to fail)',
        async () => {
          const st: RecoveryStatus = await handle.query(statusQuery);
          return st.steps.some((x) => x.state === 'failed') || st.pending?.step === 'approve-repair' ? st : undefined;
        },
        { timeoutMs: 300_000, intervalMs: 500 },
      );
      expect(s.steps.filter((x) => x.state === 'failed').map((x) => `${x.id}: ${x.error?.message}`)).toEqual([]);
      expect(s.repair?.diff?.tables[0]?.counts).toEqual({
        damaged: damaged.length,
        changedSince: 1,
        deletedByIncident: 0,
        insertedByIncident: 0,
        insertedSince: 2,
        unchanged: 24 - pendingIds.length,
        candidate: 0,
      });
      // Nothing written yet.
      expect(await rows('orders')).toEqual(now);

      // The run's page (the link the CLI prints): what waits, who may approve, the diff's counts per class, and the signal's JSON.
      const link = runPage(ui, 'default', workflowId, (await handle.describe()).runId);
      await page.goto(link);
      await seeAfterReloads(page, 'Waiting for approval: approve-repair');
      await shot(page, 'repair-02-checklist-waiting');
      // (The UI's markdown renders straight quotes as typographic ones.)
      await showsNow(
        page,
        `Repair of orders (runbook ${name}) from a copy at restore point “before-bad-update”, after restore point “after-bad-update” · INC-901`,
        { exact: false },
      );
      await showsNow(page, '0 of 1 (none yet); may approve: alice.', { exact: false });
      await showsNow(page, '(key id; 18 unchanged)', { exact: false });
      await showsNow(page, `damaged (restored): ${damaged.length} — e.g. id=`, { exact: false });
      await showsNow(page, 'changed since (conflicts: left unless included): 1 — e.g.', { exact: false });
      await showsNow(page, 'inserted since (left): 2', { exact: false });
      // One list item per class, and the include member and flag as code (what an approver copies), not a markdown link and a dash.
      await shownIn(page, 'li', `damaged (restored): ${damaged.length} — e.g. id=`);
      await shownIn(page, 'li', 'changed since (conflicts: left unless included): 1 — e.g.');
      await shownIn(page, 'code', '"include": ["changedSince"]');
      await shownIn(page, 'code', '--include changedSince');
      await showsNow(page, 'send signal approve with {"step": "approve-repair", "by": "<you>"}', { exact: false });
      // The diff is below the steps in the Current Details pane, which scrolls on its own: bring it into view for the screenshot.
      await scrollToText(page, 'damaged (restored)');
      await page.screenshot({ path: path.join(SHOTS, 'repair-02b-checklist-diff.png') });

      // 3. approve from the signal dialog, as the checklist shows it, by alice.
      await sendSignal(
        page,
        'approve',
        { step: 'approve-repair', by: 'alice', comment: 'diff checked in the UI' },
        'repair-03-signal-approve',
      );
      const evidence = (await handle.result()) as Evidence;
      expect(evidence).toMatchObject({ kind: 'repair', validationStatus: 'passed', incident: 'INC-901' });
      expect(evidence.approvals.map((a) => `${a.step} ${a.by} ${a.decision}`)).toEqual([
        'approve-repair alice approve',
      ]);
      expect(evidence.repair?.applied).toEqual([
        expect.objectContaining({ alreadyApplied: false, updated: damaged.length, inserted: 0, skipped: 0 }),
      ]);

      // 4. On the database: exactly the damaged rows are back as before the incident; the conflict, the new orders, the other edit and the outbox row are kept.
      const expected = new Map(now);
      for (const id of damaged) expected.set(id, before.get(id)!);
      expect(await rows('orders')).toEqual(expected);
      expect(JSON.parse(now.get(conflict)!)).toMatchObject({ status: 'canceled', amount: 999 });
      expect(await rows('outbox')).toEqual(outboxNow);
      expect(outboxNow.size).toBe(1);

      await page.goto(link);
      await seeAfterReloads(
        page,
        `Ended: repaired · ${damaged.length} updated, 0 inserted, 0 skipped · no failover, no traffic touched`,
        { exact: false },
      );
      await visible(page.getByText('Completed').first());
      await shot(page, 'repair-04-completed');
      process.stdout.write(
        `ui repair: ${evidence.steps.map((x) => (x.startedAt && x.finishedAt ? `${x.id} ${((Date.parse(x.finishedAt) - Date.parse(x.startedAt)) / 1000).toFixed(1)} s` : `${x.id} ${x.state}`)).join(', ')}\n`,
      );
    },
  );
});

/** Scrolls the frame that shows the text (the current details are in an iframe) until the text is in view. */
async function scrollToText(page: Page, text: string): Promise<void> {
  for (const frame of page.frames()) {
    const el = frame.getByText(text, { exact: false }).first();
    if (await el.isVisible().catch(() => false)) return el.scrollIntoViewIfNeeded();
  }
  throw new Error(`"${text}" is not shown on ${page.url()}`);
}

/** Fails unless an element of the kind (a CSS selector) holding the text shows in the page or one of its frames. */
async function shownIn(page: Page, css: string, text: string): Promise<void> {
  for (const frame of page.frames()) {
    if (
      await frame
        .locator(css, { hasText: text })
        .first()
        .isVisible()
        .catch(() => false)
    )
      return;
  }
  throw new Error(`no <${css}> with "${text}" is shown on ${page.url()}`);
}
