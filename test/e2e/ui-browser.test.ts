// The responder's path through the Temporal Web UI, in a real browser
// (Debian's chromium driven by playwright-core): a dev server of its own with
// the UI, a real test cluster and workers polling `lifeboat` and the host
// queue. In the UI: start recoverToPointInTime from the Start Workflow form;
// open the link the CLI prints (runPage: the run's User Metadata tab) and
// read there, without a click, what the run waits for, who may approve and
// how; see the wait on the History page too; find the run in the workflow
// list by the LifeboatAwaiting search attribute; send the `decide` update
// from Send an Update, refused (mallory) with its reason shown, then
// accepted (alice) for approve-fence; read the timeline in step ids; run the
// `status` query from the Queries tab; send `approve` from the signal dialog
// for approve-promote (bots' way; approve-resume is off); and see the
// verdict on the link's page. Screenshots of every stage go to
// test-artifacts/ui/.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { DEMO_SCHEMA_SQL } from '../../src/dev/demo-runbook';
import type { Evidence } from '../../src/recovery/contract';
import { statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import { startWorkers } from '../../src/worker';
import { runPage, workflowPage } from '../../src/cli/ui-link';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTestCluster } from '../harness/cluster';
import { postgresTempDir, switchAndWaitArchived } from '../harness/postgres';
import { startOwnDevServer } from '../harness/dev-server';
import { freePort, waitFor } from '../harness/ports';
import {
  launchChromium,
  seeAfterReloads,
  sendSignal,
  sendUpdate,
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

describe('the Temporal UI path of a recovery', () => {
  it(
    "starts recoverToPointInTime from the Start Workflow form; the CLI's link shows what it waits for and how; takes decide updates (answering a refusal with its reason) and an approve signal; answers the status query and shows the verdict",
    { timeout: 600_000 },
    async () => {
      mkdirSync(SHOTS, { recursive: true });
      const scratch = postgresTempDir('ui');
      cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
      const runbooksDir = path.join(scratch, 'runbooks');
      mkdirSync(runbooksDir);
      process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;

      // A dev server of our own, with the UI (the run's shared one is headless).
      const dev = await startOwnDevServer(async () => ({ port: await freePort(), uiPort: await freePort() }), {
        logFile: path.join(scratch, 'temporal.log'),
      });
      cleanups.push(() => dev.stop());
      const ui = `http://127.0.0.1:${dev.uiPort}`;

      const host = `ui${process.pid}`;
      const name = `ui-${process.pid}`;
      const tc = await startTestCluster({ name, kind: 'file', runbooksDir, host, runbook: { approvers: ['alice'] } });
      cleanups.push(() => tc.stop());
      // One approver and no approve-resume keep the UI path to two signals.
      writeFileSync(
        tc.runbookFile,
        readFileSync(tc.runbookFile, 'utf8').replace(/^(  approve-promote: .*)$/m, '$1\n  approve-resume: false'),
      );
      const runbook = await loadRunbook(name);
      expect(runbook.approvals['approve-resume']).toBe(false);
      await tc.pg.query(DEMO_SCHEMA_SQL);
      await tc.pg.query(`create role app login; grant all on all tables in schema public to app`);
      await takeBaseBackup({ runbook });
      await tc.pg.query(`create table t as select g as id from generate_series(1, 10000) g`);
      await switchAndWaitArchived(tc.pg);

      // Our own server, so the shared queue `lifeboat` is ours too.
      const workers = await startWorkers({ address: dev.address, namespace: 'default', host });
      cleanups.push(() => workers.shutdown());
      const connection = await Connection.connect({ address: dev.address });
      cleanups.push(() => connection.close());
      const client = new TemporalClient({ connection });

      const browser: Browser = await launchChromium();
      cleanups.push(() => browser.close());
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      page.setDefaultTimeout(30_000);
      const workflowId = `recover-${name}`;
      // The workflow id's page: what the UI's list opens (History).
      const wfPage = workflowPage(ui, 'default', workflowId);

      // 1. The Start Workflow form: id, task queue, type, one JSON input, and a summary for the list.
      const input = {
        runbook: name,
        target: { latest: true },
        incident: 'INC-900',
        reason: 'started from the Temporal UI',
      };
      await startFromForm(
        page,
        ui,
        {
          workflowId,
          taskQueue: 'lifeboat',
          workflowType: 'recoverToPointInTime',
          input,
          summary: `**INC-900** recover \`${name}\` to the end of the archive`,
        },
        '01-start-form',
      );
      const handle = client.workflow.getHandle(workflowId);
      await waitFor(
        'the run to start',
        async () => ((await handle.describe().catch(() => undefined)) ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 250 },
      );

      // 2. The link lifeboat recover, status, pending and chat-ops print: the
      // run's User Metadata tab, under its run id. Without a click it shows the
      // static summary and the checklist: the step waited for, who may approve
      // and how, from the UI (the decide update with its JSON) and the CLI.
      const runId = (await handle.describe()).runId;
      const link = runPage(ui, 'default', workflowId, runId);
      await page.goto(link);
      await seeAfterReloads(page, 'Waiting for approval: approve-fence');
      expect(page.url()).toBe(link);
      await showsNow(page, `INC-900 recover ${name} to the end of the archive`);
      await showsNow(page, `Recovery of ${name} to the end of the archive`);
      await showsNow(page, '0 of 1 (none yet); may approve: alice.', { exact: false });
      await showsNow(
        page,
        'Temporal UI: More Actions › Send an Update › decide, with {"step": "approve-fence", "decision": "approve", "by": "<you>"}',
        { exact: false },
      );
      await showsNow(page, `lifeboat approve ${workflowId} approve-fence --as <you>`);
      await showsNow(page, '[?] waiting for approval: approve-fence Approve fencing the primary');
      await shot(page, '02-link-checklist-approve-fence');
      // The page the UI's list opens (History): the wait for a person shows as a timer with what it waits for.
      await page.goto(wfPage);
      await seeAfterReloads(page, 'approve-fence: waiting for approval, 0 of 1; may approve: alice', { exact: false });
      await shot(page, '02b-landing-page-waiting');

      // 3. The workflow list filtered by the search attribute: what waits for a human.
      await page.goto(
        `${ui}/namespaces/default/workflows?query=${encodeURIComponent(`LifeboatAwaiting = 'approve-fence'`)}`,
      );
      await seeAfterReloads(page, workflowId);
      await shot(page, '03-list-filtered-by-awaiting');

      // 4. approve-fence as the checklist says: the decide update from Send an
      // Update. First by mallory, who may not: the dialog stays open with the
      // workflow's reason, and the checklist lists the refusal.
      await page.goto(link);
      const refused = await sendUpdate(
        page,
        { step: 'approve-fence', decision: 'approve', by: 'mallory' },
        '04-update-dialog',
      );
      await visible(refused.getByText('NOT_AN_APPROVER: mallory may not decide approve-fence; allowed: alice'));
      await shot(page, '05-update-refused');
      await refused.getByRole('button', { name: 'Cancel' }).last().click();
      await seeAfterReloads(
        page,
        'Ignored messages: 1 (last: decide approve from mallory: NOT_AN_APPROVER: mallory may not decide approve-fence; allowed: alice)',
      );
      expect((await handle.query(statusQuery)).pending?.step).toBe('approve-fence');
      // Then by alice: answered, the dialog closes.
      const accepted = await sendUpdate(page, {
        step: 'approve-fence',
        decision: 'approve',
        by: 'alice',
        comment: 'fence approved from the UI',
      });
      await visible(page.getByText('Update successful'));
      await shot(page, '06-update-accepted');
      await accepted.waitFor({ state: 'hidden' });
      const fence = (await handle.query(statusQuery)).decisions.find((d) => d.step === 'approve-fence');
      expect(fence).toMatchObject({ decision: 'approve', by: 'alice', via: 'update' });

      await waitFor(
        'approve-promote to wait',
        async () => ((await handle.query(statusQuery)).pending?.step === 'approve-promote' ? true : undefined),
        { timeoutMs: 240_000, intervalMs: 1000 },
      );
      await page.goto(link);
      await seeAfterReloads(page, 'Waiting for approval: approve-promote');
      await showsNow(page, '[x] approve-fence Approve fencing the primary — approved by alice');
      await showsNow(
        page,
        'Temporal UI: More Actions › Send an Update › decide, with {"step": "approve-promote", "decision": "approve", "by": "<you>"}',
        { exact: false },
      );
      await shot(page, '07-link-checklist-approve-promote');
      // The timeline and history read as the runbook: step ids with what each did.
      await page.goto(wfPage);
      await seeAfterReloads(page, 'disable-writers: writers gate off on the primary, proven by a refused write', {
        exact: false,
      });
      await shot(page, '08-history-step-ids');

      // 5. The status query from the Queries tab.
      await page.goto(wfPage);
      await page.getByRole('tab', { name: 'Queries' }).click();
      await page.getByTestId('query-select-button').click();
      await page.getByRole('option', { name: /^status Where the recovery stands/ }).click();
      await page.getByRole('button', { name: 'Run Query' }).click();
      // Whole lines near the top of the pretty-printed answer (the editor draws
      // only the lines in view; the hidden signal descriptions hold similar JSON).
      await visible(page.getByText(/^\s*"workflow": "recoverToPointInTime",$/));
      await visible(page.getByText(/^\s*"phase": "waiting",$/));
      // The decision waited for comes right after the phase, before the 18 step records.
      await visible(page.getByText(/^\s*"pending": \{$/));
      await visible(page.getByText(/^\s*"step": "approve-promote",$/));
      await shot(page, '09-status-query');

      // 6. approve-promote from the signal dialog, as a bot that cannot send updates would; the run completes.
      await page.goto(link);
      await sendSignal(
        page,
        'approve',
        { step: 'approve-promote', by: 'alice', comment: 'invariants pass, promote' },
        '11-signal-approve-promote',
        async (dialog) => {
          await dialog
            .getByRole('option', { name: /^reject Reject the step awaiting approval; the run stops there, fenced\./ })
            .waitFor({ state: 'attached' });
          await shot(page, '10-signal-dialog');
        },
      );
      const evidence = (await handle.result()) as Evidence;
      expect(evidence.validationStatus).toBe('passed');
      expect(evidence.approvals.map((a) => `${a.step} ${a.by} ${a.decision}`)).toEqual([
        'approve-fence alice approve',
        'approve-promote alice approve',
      ]);
      // The link's page, without a click: how it ended, first, with the observed RTO and RPO.
      await page.goto(link);
      await seeAfterReloads(page, '[x] record-evidence', { exact: false });
      await visible(page.getByText('Completed').first());
      // The target is the end of the archive: no RPO to measure, and the page says so.
      expect(evidence.rpoObservedSeconds).toBeUndefined();
      await showsNow(
        page,
        `Ended: recovered · promoted at ${evidence.promotedAt} · RTO ${evidence.rtoObservedSeconds} s · RPO not measured (the target is not a time; last commit replayed: ${evidence.replayedToTime})`,
        { exact: false },
      );
      await showsNow(
        page,
        '[-] skipped: approve-resume Approve resuming traffic — turned off in the runbook (approvals.approve-resume: false)',
      );
      await shot(page, '12-completed');
      await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(`LifeboatRunbook = '${name}'`)}`);
      await seeAfterReloads(page, workflowId);
      await shot(page, '13-list-filtered-by-runbook');
    },
  );
});
