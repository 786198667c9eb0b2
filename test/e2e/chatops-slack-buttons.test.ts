// Approving from a Slack message with buttons, end to end: a real
// recoverToPointInTime run on a real test cluster whose runbook has
// notify.slack; a fake Slack on loopback (test/harness/fake-slack.ts) is the
// channel's incoming webhook and the response_url endpoint; two chat-ops
// replicas share one real Redis for the replay guard and the rate limit.
// The run posts the approval message with Approve / Reject when it waits at
// approve-fence; a forged press is refused; a stranger's and an unmapped
// user's presses are refused and the message says why, buttons kept;
// alice's press on replica A approves and the run goes on; the same press
// replayed to replica B is refused as a replay; a second (concurrent) run
// is rejected with the button on replica B; a press on that ended run's
// message is refused and the buttons go; a user over the rate limit is
// refused whichever replica they reach; the binary starts with the shared
// guard only when its Redis is named and set; with Redis down every press
// is refused (fail closed) and the presser is told why.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  Client as TemporalClient,
  Connection,
  WorkflowFailedError,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { signedHeaders } from '../../src/chatops/auth';
import { REJECT_BUTTON_REASON } from '../../src/chatops/interactions';
import { startChatopsServer, type ChatopsServer } from '../../src/chatops/server';
import { redisState } from '../../src/chatops/shared-state';
import type { RecoveryStatus } from '../../src/recovery/contract';
import { stopChild } from '../../src/dev/child';
import { statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import { projectRoot } from '../../src/tools';
import { startWorkers, type RunningWorkers } from '../../src/worker';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { startFakeSlack, type ChannelMessage, type FakeSlack } from '../harness/fake-slack';
import { postgresTempDir, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { startRedis, type TestRedis } from '../harness/redis';
import { temporalAddress } from '../harness/services';

const SECRET = 'e2e-slack-buttons-secret-51c0';
const WEBHOOK_ENV = 'LIFEBOAT_TEST_SLACK_WEBHOOK';
const RATE = 5;
const runbooksDir = postgresTempDir('runbooks');
const cleanups: Cleanups = [];
const logs: string[] = [];
const ALICE = { id: 'UALICE', name: 'alice.s' };
const BOB = { id: 'UBOB', name: 'bob.s' };
const CAROL = { id: 'UCAROL', name: 'carol.s' };
const MALLORY = { id: 'UMALLORY', name: 'mallory' };
const DAVE = { id: 'UDAVE', name: 'dave' };
let client: TemporalClient;
let tc: TestCluster;
let workers: RunningWorkers;
let slack: FakeSlack;
let redis: TestRedis;
let a: ChatopsServer;
let b: ChatopsServer;
let taskQueue: string;
let run1: WorkflowHandleWithFirstExecutionRunId;
// The replicas' clock: fixed while the test runs, so the rate limit's minute never turns over under it.
const clock = Math.floor(Date.now() / 1000);

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  client = new TemporalClient({ connection });
  slack = await startFakeSlack();
  cleanups.push(() => slack.close());
  process.env[WEBHOOK_ENV] = slack.webhookUrl;
  redis = await startRedis();
  cleanups.push(() => redis.stop());

  const host = `slackbuttons${process.pid}`;
  tc = await startTestCluster({
    name: 'slackbtn',
    kind: 'file',
    runbooksDir,
    host,
    runbook: { approvers: ['alice', 'bob'] },
  });
  cleanups.push(() => tc.stop());
  writeFileSync(
    tc.runbookFile,
    `${readFileSync(tc.runbookFile, 'utf8')}\nnotify: { slack: { webhookUrlEnv: ${WEBHOOK_ENV} } }\n`,
  );
  const runbook = await loadRunbook(tc.name);
  expect(runbook.notify).toEqual({ slack: { webhookUrlEnv: WEBHOOK_ENV } });
  // capture-forensics reads the outbox; disable-writers, after the fence,
  // fails (no `app` role to fence) and the run waits there.
  await tc.pg.query(
    `create table outbox (id bigserial primary key, topic text, payload jsonb, published_at timestamptz)`,
  );
  await takeBaseBackup({ runbook });
  await switchAndWaitArchived(tc.pg);

  taskQueue = `slackbtn-${process.pid}`;
  workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
  cleanups.push(() => workers.shutdown());

  const users = new Map([
    ['slack:UALICE', 'alice'],
    ['slack:UBOB', 'bob'],
    ['slack:UCAROL', 'carol'],
  ]);
  const replica = async (name: string) =>
    startChatopsServer({
      secret: SECRET,
      users,
      temporal: { address: temporalAddress(), namespace: 'default' },
      state: await redisState(redis.url, 'TEST_REDIS_URL', RATE),
      ratePerMinute: RATE,
      nowSeconds: () => clock,
      slackResponseUrlPrefix: slack.url,
      // Temporal on a loaded CI machine may be slow: the outcome is awaited, never deferred.
      slackReplyWithinMs: 120_000,
      log: (l) => logs.push(`${name} ${l}`),
    });
  a = await replica('A');
  cleanups.push(() => a.close());
  b = await replica('B');
  cleanups.push(() => b.close());

  run1 = await startRecovery('INC-1');
});
afterAll(async () => {
  await runCleanups(cleanups);
  delete process.env[WEBHOOK_ENV];
  rmSync(runbooksDir, { recursive: true, force: true });
});

async function startRecovery(incident: string, concurrent = false): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const wf = await client.workflow.start('recoverToPointInTime', {
    taskQueue,
    workflowId: `recover-slackbtn-${incident}-${Date.now().toString(36)}`,
    args: [
      {
        runbook: tc.name,
        target: { latest: true },
        incident,
        reason: 'slack buttons test',
        ...(concurrent ? { concurrent: true } : {}),
      },
    ],
  });
  cleanups.push(() => wf.terminate('test cleanup').catch(() => undefined));
  return wf;
}

function waitStep(wf: WorkflowHandleWithFirstExecutionRunId, step: string, state: string): Promise<RecoveryStatus> {
  return waitFor(
    `${step} to be ${state}`,
    async () => {
      const st = await wf.query(statusQuery);
      return st.steps.find((x) => x.id === step)?.state === state ? st : undefined;
    },
    { timeoutMs: 150_000, intervalMs: 200 },
  );
}

async function send(server: ChatopsServer, req: { body: string; headers: Record<string, string> }) {
  const res = await fetch(`${server.url}/slack/interactions`, { method: 'POST', body: req.body, headers: req.headers });
  return { status: res.status, outcome: res.headers.get('x-lifeboat-outcome') };
}

function press(
  message: ChannelMessage,
  actionId: 'lifeboat-approve' | 'lifeboat-reject',
  user: { id: string; name: string },
) {
  return slack.press({ message, actionId, user, secret: SECRET, timestamp: String(clock) });
}

/** The outcome line the message ends with, and whether its buttons are still there. */
function shown(message: ChannelMessage) {
  const last = message.blocks.at(-1)!;
  const outcome =
    last.block_id === 'lifeboat-outcome' ? (last.elements as Array<{ text: string }>)[0]!.text : undefined;
  return { outcome, buttons: message.blocks.some((x) => x.type === 'actions') };
}

async function updatesInHistory(wf: WorkflowHandleWithFirstExecutionRunId): Promise<number> {
  const history = await wf.fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
}

describe('approving a recovery from the Slack message with buttons, through two chat-ops replicas', () => {
  let message: ChannelMessage;

  it('posts the approval message to the channel webhook when approve-fence starts waiting: the run, the step, who may decide, Approve and Reject', async () => {
    message = await slack.waitForMessage(1);
    await waitStep(run1, 'approve-fence', 'awaiting-approval');
    const id = run1.workflowId;
    expect(message.text).toBe(`Lifeboat ${id}: approve-fence has been waiting for approval by 1 of alice, bob`);
    expect(message.blocks[0]).toMatchObject({
      type: 'header',
      text: { type: 'plain_text', text: 'Waiting for approval: approve-fence' },
    });
    const section = message.blocks[1]!.text as { type: string; text: string };
    expect(section.type).toBe('mrkdwn');
    expect(section.text.split('\n')).toEqual([
      `*Run:* \`${id}\` (runbook slackbtn)`,
      expect.stringMatching(/^\*Step:\* `approve-fence`, waiting since \d{4}-\d\d-\d\dT[\d:.]+Z$/),
      '*Who may decide:* 1 of alice, bob',
      '*Approved so far:* nobody',
    ]);
    const actions = message.blocks.find((x) => x.type === 'actions')!;
    expect(actions.block_id).toBe('lifeboat-decide');
    const value = JSON.stringify({ workflowId: id, step: 'approve-fence' });
    expect(actions.elements).toEqual([
      {
        type: 'button',
        action_id: 'lifeboat-approve',
        style: 'primary',
        text: { type: 'plain_text', text: 'Approve' },
        value,
      },
      expect.objectContaining({
        type: 'button',
        action_id: 'lifeboat-reject',
        style: 'danger',
        text: { type: 'plain_text', text: 'Reject' },
        value,
      }),
    ]);
    // Posted once, and the audit trail says so.
    expect(slack.messages).toHaveLength(1);
  });

  it('refuses a press with a bad signature, and one from a stranger or an unmapped user, saying why in the message; nothing reaches the run', async () => {
    const forged = press(message, 'lifeboat-approve', ALICE);
    expect(
      await send(a, {
        body: forged.body,
        headers: { ...forged.headers, ...signedHeaders('guessed-secret', forged.body, String(clock)) },
      }),
    ).toEqual({ status: 401, outcome: 'bad-signature' });
    expect(slack.responses).toHaveLength(0);

    expect(await send(b, press(message, 'lifeboat-approve', CAROL))).toEqual({
      status: 200,
      outcome: 'not-an-approver',
    });
    expect(shown(message)).toEqual({
      outcome:
        'approve by carol (slack:UCAROL) refused: NOT_AN_APPROVER: carol may not decide approve-fence; allowed: alice, bob (nothing was sent to the run)',
      buttons: true,
    });
    expect(await send(a, press(message, 'lifeboat-reject', MALLORY))).toEqual({
      status: 200,
      outcome: 'unmapped-user',
    });
    expect(shown(message)).toEqual({
      outcome:
        "reject refused: slack:UMALLORY (mallory) is not in Lifeboat's chat users table, so it cannot act as an approver: ask whoever runs lifeboat chatops to map it to your approver name (--users)",
      buttons: true,
    });
    // The original blocks are all still there, the outcome replaced, not stacked.
    expect(message.blocks.slice(0, -1)).toEqual(message.versions[0]!.blocks);
    expect(await updatesInHistory(run1)).toBe(0);
    expect((await run1.query(statusQuery)).decisions).toEqual([]);
  });

  it("takes alice's Approve on replica A: the message says approved by alice without buttons, and the recovery goes on", async () => {
    const approve = press(message, 'lifeboat-approve', ALICE);
    expect(await send(a, approve)).toEqual({ status: 200, outcome: 'accepted' });
    expect(shown(message)).toEqual({
      outcome: 'Approved by alice (slack:UALICE): approve-fence is now done (approved by alice)',
      buttons: false,
    });
    const st = await waitStep(run1, 'disable-writers', 'failed');
    expect(st.decisions.map((d) => [d.step, d.decision, d.by, d.via])).toEqual([
      ['approve-fence', 'approve', 'alice', 'update'],
    ]);

    // The same signed press again, to the other replica: the shared replay guard refuses it.
    const responsesBefore = slack.responses.length;
    expect(await send(b, approve)).toEqual({ status: 409, outcome: 'replayed' });
    expect(await send(a, approve)).toEqual({ status: 409, outcome: 'replayed' });
    expect(slack.responses).toHaveLength(responsesBefore);
    expect(await updatesInHistory(run1)).toBe(1);
  });

  it("rejects a second run with bob's Reject on replica B; a later press on that message is refused and the buttons go", async () => {
    const run2 = await startRecovery('INC-2', true);
    const second = await slack.waitForMessage(2);
    expect(second.text).toBe(
      `Lifeboat ${run2.workflowId}: approve-fence has been waiting for approval by 1 of alice, bob`,
    );
    expect(await send(b, press(second, 'lifeboat-reject', BOB))).toEqual({ status: 200, outcome: 'accepted' });
    expect(shown(second)).toEqual({
      outcome: 'Rejected by bob (slack:UBOB): the run stops at approve-fence, fenced',
      buttons: false,
    });
    expect(
      await run2.result().then(
        () => 'completed',
        (e: unknown) => e,
      ),
    ).toBeInstanceOf(WorkflowFailedError);
    const st = await run2.query(statusQuery);
    expect(st.phase).toBe('rejected');
    expect(st.decisions.map((d) => [d.step, d.decision, d.by, d.comment])).toEqual([
      ['approve-fence', 'reject', 'bob', REJECT_BUTTON_REASON],
    ]);

    // alice's press arrives late (the message still had buttons on her screen).
    const late = press({ ...second, blocks: second.versions[0]!.blocks }, 'lifeboat-approve', ALICE);
    expect(await send(a, late)).toEqual({ status: 200, outcome: 'run-ended' });
    expect(shown(second)).toEqual({
      outcome: `approve by alice (slack:UALICE) refused: ${run2.workflowId} has ended (rejected): it takes no more decisions`,
      buttons: false,
    });
  });

  it("counts a user's presses across both replicas: over the limit, refused to the presser alone", async () => {
    // Pressed on the first message as it was first shown (a screen that was not refreshed): dave is unmapped, so Temporal is not asked.
    const stale = { ...message, blocks: message.versions[0]!.blocks };
    const before = message.versions.length;
    const outcomes: Array<string | null> = [];
    for (let i = 0; i <= RATE; i++)
      outcomes.push((await send(i % 2 ? b : a, press(stale, 'lifeboat-approve', DAVE))).outcome);
    expect(outcomes).toEqual([...Array<string>(RATE).fill('unmapped-user'), 'rate-limited']);
    expect(slack.ephemerals.at(-1)).toEqual({
      ts: message.ts,
      text: `approve of approve-fence: refused: slack:UDAVE sent more than ${RATE} requests a minute; try again in ${60 - (clock % 60)} s`,
    });
    expect(message.versions.length).toBe(before + RATE);
  });

  it('the lifeboat binary: --redis-url-env naming an unset variable exits 2 with a hint; set, it serves with the shared guard and says where', async () => {
    const bin = path.join(projectRoot(), 'bin/lifeboat');
    const usersFile = path.join(runbooksDir, 'chat-users.yaml');
    writeFileSync(usersFile, 'slack:UALICE: alice\n');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: temporalAddress(),
      LIFEBOAT_CHATOPS_SIGNING_SECRET: SECRET,
    };
    delete env.LIFEBOAT_CHATOPS_REDIS_URL;
    const args = ['chatops', '--port', '0', '--users', usersFile, '--redis-url-env', 'LIFEBOAT_CHATOPS_REDIS_URL'];
    const refused = await runToEnd(spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    expect(refused).toEqual({
      code: 2,
      output:
        'lifeboat: --redis-url-env LIFEBOAT_CHATOPS_REDIS_URL: the variable is not set\n' +
        'HINT: export LIFEBOAT_CHATOPS_REDIS_URL=redis://[:<password>@]<host>:6379 (the Redis every chat-ops replica shares); leave --redis-url-env out to run one replica\n',
    });

    const child = spawn(bin, args, {
      env: { ...env, LIFEBOAT_CHATOPS_REDIS_URL: redis.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    cleanups.push(() => (child.exitCode === null ? stopChild(child) : undefined));
    await waitFor('lifeboat chatops to listen', async () => (out.includes('Ctrl-C stops it') ? true : undefined), {
      timeoutMs: 60_000,
    });
    expect(out).toMatch(/POST \/slack\/commands, \/slack\/interactions, \/v1\/decide, \/v1\/status/);
    expect(out).toContain(
      `; replay guard and rate limit Redis at $LIFEBOAT_CHATOPS_REDIS_URL (127.0.0.1:${redis.port}). Ctrl-C stops it.`,
    );
    child.kill('SIGTERM');
    expect((await runToEnd(child)).code).toBe(0);
  });

  it('refuses every press while Redis is down (fail closed) and tells the presser why', async () => {
    await redis.stop();
    const updates = await updatesInHistory(run1);
    const versions = message.versions.length;
    expect(await send(b, press({ ...message, blocks: message.versions[0]!.blocks }, 'lifeboat-approve', BOB))).toEqual({
      status: 200,
      outcome: 'guard-unavailable',
    });
    expect(slack.ephemerals.at(-1)!.text).toMatch(
      /^refused: Lifeboat cannot check this request against replays and the rate limit \(Redis at \$TEST_REDIS_URL \(127\.0\.0\.1:\d+\) did not answer: .+\), so nothing was done rather than risk taking it twice; try again in a minute, or tell whoever runs lifeboat chatops$/,
    );
    expect(message.versions.length).toBe(versions);
    expect(await updatesInHistory(run1)).toBe(updates);
  });

  it('logged one line per press on each replica, with the outcome and what became of the message, never the secret or a payload', () => {
    expect(
      logs.filter((l) =>
        /^A chatops POST \/slack\/interactions 200 accepted chatUser=slack:UALICE approver=alice decision=approve step=approve-fence workflowId=recover-slackbtn-INC-1-\w+ message=updated:200 \d+ms$/.test(
          l,
        ),
      ),
    ).toHaveLength(1);
    expect(logs.filter((l) => /^B chatops POST \/slack\/interactions 409 replayed /.test(l))).toHaveLength(1);
    for (const line of logs) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toMatch(/v0=|payload|responsesecret|webhooksecret/);
    }
  });
});

function runToEnd(child: ChildProcess): Promise<{ code: number | null; output: string }> {
  let output = '';
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve({ code: child.exitCode, output });
    else child.once('exit', (code) => resolve({ code, output }));
  });
}
