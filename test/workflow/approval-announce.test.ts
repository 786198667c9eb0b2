// The Slack approval message from the workflow's side: a runbook with
// notify.slack announces each approval wait once (approve-fence, then
// approve-promote after the fence), under its patch, and records what the
// activity answered in the audit trail; a runbook without it schedules no
// announcement and records no patch marker, so its history is what it was
// before the feature. Fake activities (test/workflow/recovery-harness.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { decideUpdate } from '../../src/recovery/messages';
import { ANNOUNCE_APPROVAL_PATCH } from '../../workflows/recovery/machine';
import { waitFor } from '../harness/ports';
import { startHarness, TIME_TARGET, type Harness } from './recovery-harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

async function history(wf: WorkflowHandle) {
  const events = (await wf.fetchHistory()).events ?? [];
  return {
    announcements: events.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'announceApproval',
    ).length,
    patchMarkers: events.filter((e) =>
      Buffer.from(e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data ?? [])
        .toString()
        .includes(ANNOUNCE_APPROVAL_PATCH),
    ).length,
  };
}

/** LIFEBOAT_RECORD_HISTORIES=1 writes the run's history for replay.test.ts (as recovery.test.ts does). */
async function recordHistory(name: string, wf: WorkflowHandle): Promise<void> {
  if (process.env.LIFEBOAT_RECORD_HISTORIES !== '1') return;
  const dir = path.resolve(__dirname, 'histories');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), historyToJSON(await wf.fetchHistory()));
}

describe('the approval announcement', () => {
  it('with notify.slack: announced once per approval wait, with who may decide, and noted in the audit trail', async () => {
    h = await startHarness('announce', { notify: { slack: { webhookUrlEnv: 'SLACK_APPROVALS_WEBHOOK' } } });
    const wf = await h.start({ target: TIME_TARGET });
    await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-fence', decision: 'approve', by: 'alice' }] });
    await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    const notes = () => h!.calls.audit.map((l) => l.note).filter((n) => n?.startsWith('approval message'));
    await waitFor('both announcements in the audit trail', async () => (notes().length >= 2 ? true : undefined));
    await wf.terminate('test over');
    expect(h.calls.log.filter((l) => l.startsWith('announceApproval'))).toEqual([
      'announceApproval {"step":"approve-fence","approvers":["alice","bob"]}',
      'announceApproval {"step":"approve-promote","approvers":["alice","bob","carol"]}',
    ]);
    expect(notes()).toEqual([
      'approval message for approve-fence: approval message for approve-fence',
      'approval message for approve-promote: approval message for approve-promote',
    ]);
    expect(await history(wf)).toEqual({ announcements: 2, patchMarkers: 1 });
    await recordHistory('announce-approval-slack', wf);
  });

  it('without notify.slack: nothing announced and no patch marker in the history', async () => {
    h = await startHarness('no-announce', { notify: { webhookUrlEnv: 'OTHER_WEBHOOK' } });
    const wf = await h.start({ target: TIME_TARGET });
    await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-fence', decision: 'approve', by: 'alice' }] });
    await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    await wf.terminate('test over');
    expect(h.calls.log.filter((l) => l.startsWith('announceApproval'))).toEqual([]);
    expect(await history(wf)).toEqual({ announcements: 0, patchMarkers: 0 });
  });
});
