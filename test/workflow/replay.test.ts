// Determinism guard: recorded histories of recoverToPointInTime (written by
// recovery.test.ts with LIFEBOAT_RECORD_HISTORIES=1) are replayed against the
// current workflow code. A change that would break running recoveries (a
// reordered activity, a new await before an existing one, a renamed step
// that changes the commands) fails here instead of in a worker at 3 a.m.
// search-attributes-quorum.json is the quorum run recorded after the search
// attributes came in (patch `lifeboat-search-attributes`); the others were
// recorded before it and prove that runs started then still replay.
// one-recovery-*.json (written by one-recovery.test.ts) carry the patch
// `one-recovery-per-runbook`: a run that asked and went on, and one refused.
// preflight-backup-not-found.json carries `preflight-failure-ends-run`: a
// non-retryable preflight failure ends the run at once. no-gates.json carries
// `no-gates-no-approve-fence`: a runbook without gates skips approve-fence.
// repair-*.json (written by repair.test.ts) are repairFromPointInTime runs:
// approved by a quorum, and an apply retried after a committed crash.
// announce-approval-slack.json (written by approval-announce.test.ts) carries
// `announce-approval-slack`: a runbook with notify.slack announces each wait.
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { workflowBundle } from './recovery-harness';

const DIR = path.resolve(__dirname, 'histories');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

it('has recorded histories to replay', () => {
  expect(files).toEqual([
    'announce-approval-slack.json',
    'dry-run.json',
    'failed-step-skip-retry-abort.json',
    'invariant-override.json',
    'no-gates.json',
    'one-recovery-first-aborted.json',
    'one-recovery-refused.json',
    'preflight-backup-not-found.json',
    'preflight-endpoint-unreachable.json',
    'quorum-ui-signals-and-update.json',
    'repair-apply-retried.json',
    'repair-quorum.json',
    'retarget-after-failed-replay.json',
    'retarget-later-then-earlier.json',
    'search-attributes-quorum.json',
  ]);
});

it.each(files)('replays %s against the current workflow code without non-determinism', async (file) => {
  const history: unknown = JSON.parse(readFileSync(path.join(DIR, file), 'utf8'));
  const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, [
    { workflowId: file, history },
  ]);
  for await (const r of results) {
    expect(r.error).toBeUndefined();
  }
});
