// `lifeboat chatops` against a real recoverToPointInTime run on a real test
// cluster: the run waits at approve-fence (two approvers needed) after
// preflight and capture-forensics. Strangers, forgers, stale and replayed
// requests and a mapped non-approver are refused without leaving a trace in
// the run (no update or signal in its history, status unchanged, nothing in
// the audit log); alice approves through a Slack slash command and bob
// through the JSON endpoint, both land in the audit log in the repository
// under their approver names. The run is then aborted through chat-ops.
// Finally the real binary refuses to start without its secret and serves
// with it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { startChatopsServer, type ChatopsServer } from '../../src/chatops/server';
import { stopChild } from '../../src/dev/child';
import type { AuditLine, RecoveryStatus } from '../../src/recovery/contract';
import { statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import { clusterName } from '../../src/runbook/schema';
import { projectRoot } from '../../src/tools';
import { startWorkers, type RunningWorkers } from '../../src/worker';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { postgresTempDir, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';

const SECRET = 'e2e-chatops-secret-7d41b2';
const runbooksDir = postgresTempDir('runbooks');
const usersFile = path.join(runbooksDir, 'chat-users.yaml');
const cleanups: Cleanups = [];
const logs: string[] = [];
let client: TemporalClient;
let tc: TestCluster;
let workers: RunningWorkers;
let server: ChatopsServer;
let wf: WorkflowHandleWithFirstExecutionRunId;
let auditFile: string;

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  client = new TemporalClient({ connection });

  const host = `chatops${process.pid}`;
  tc = await startTestCluster({
    name: 'chatops',
    kind: 'file',
    runbooksDir,
    host,
    runbook: { approvers: ['alice', 'bob'] },
  });
  cleanups.push(() => tc.stop());
  // Two approvers at the fence, so both endpoints get to approve it.
  const yaml = readFileSync(tc.runbookFile, 'utf8');
  writeFileSync(
    tc.runbookFile,
    yaml.replace('approve-fence: { approvers: [alice, bob] }', 'approve-fence: { approvers: [alice, bob], min: 2 }'),
  );
  const runbook = await loadRunbook(tc.name);
  expect(runbook.approvals['approve-fence']).toMatchObject({ approvers: ['alice', 'bob'], min: 2 });
  // capture-forensics reads the outbox high-water mark. There is no `app`
  // role to fence: disable-writers, the step after the fence, refuses before
  // touching anything, and the run waits there to be aborted.
  await tc.pg.query(
    `create table outbox (id bigserial primary key, topic text, payload jsonb, published_at timestamptz)`,
  );
  await takeBaseBackup({ runbook });
  await switchAndWaitArchived(tc.pg);

  const taskQueue = `chatops-${process.pid}`;
  workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
  cleanups.push(() => workers.shutdown());
  wf = await client.workflow.start('recoverToPointInTime', {
    taskQueue,
    workflowId: `recover-chatops-${Date.now().toString(36)}`,
    args: [{ runbook: tc.name, target: { latest: true }, incident: 'INC-7', reason: 'chat-ops test' }],
  });
  cleanups.push(() => wf.terminate('test cleanup').catch(() => undefined));
  await waitStep('approve-fence', 'awaiting-approval');
  auditFile = path.join(
    tc.repoUrl.replace('file://', ''),
    clusterName(runbook),
    'audit',
    `${(await wf.describe()).runId}.jsonl`,
  );

  writeFileSync(usersFile, 'slack:UALICE: alice\nops:bob: bob\nslack:UCAROL: carol\nops:carol: carol\n');
  server = await startChatopsServer({
    port: 0,
    secret: SECRET,
    users: new Map([
      ['slack:UALICE', 'alice'],
      ['ops:bob', 'bob'],
      ['slack:UCAROL', 'carol'],
      ['ops:carol', 'carol'],
    ]),
    temporal: { address: temporalAddress(), namespace: 'default' },
    log: (l) => logs.push(l),
    uiUrl: 'http://ui.example:8080/',
  });
  cleanups.push(() => server.close());
});
afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

/** The line replies about the run end with: its checklist tab in the Temporal UI, under the run id. */
const uiLine = () =>
  `Temporal UI, the run's "User Metadata" tab (Current Details: the checklist; the page does not refresh itself, press R for the latest): ${uiLink()}`;
const uiLink = () =>
  `http://ui.example:8080/namespaces/default/workflows/${wf.workflowId}/${wf.firstExecutionRunId}/user-metadata`;

function waitStep(step: string, state: string): Promise<RecoveryStatus> {
  return waitFor(
    `${step} to be ${state}`,
    async () => {
      const st = await wf.query(statusQuery);
      return st.steps.find((x) => x.id === step)?.state === state ? st : undefined;
    },
    { timeoutMs: 150_000, intervalMs: 200 },
  );
}

let trigger = 0;
function slackBody(userId: string, text: string): string {
  // As Slack sends it; trigger_id makes each body, and so each signature, unique.
  return new URLSearchParams({
    token: 'x',
    team_id: 'T1',
    channel_id: 'C1',
    user_id: userId,
    user_name: userId.slice(1).toLowerCase(),
    command: '/lifeboat',
    text,
    trigger_id: `${process.pid}.${++trigger}`,
  }).toString();
}

async function post(
  url: string,
  route: string,
  body: string,
  headers: Record<string, string> = signedHeaders(SECRET, body),
) {
  const res = await fetch(`${url}${route}`, {
    method: 'POST',
    body,
    headers: {
      'Content-Type': route === '/slack/commands' ? 'application/x-www-form-urlencoded' : 'application/json',
      ...headers,
    },
  });
  return {
    status: res.status,
    outcome: res.headers.get('x-lifeboat-outcome'),
    body: (await res.json()) as Record<string, unknown>,
  };
}

/** Updates and signals the run's history holds: what reached the workflow. */
async function messagesInHistory(): Promise<string[]> {
  const history = await wf.fetchHistory();
  const out: string[] = [];
  for (const e of history.events ?? []) {
    if (e.workflowExecutionSignaledEventAttributes)
      out.push(`signal ${e.workflowExecutionSignaledEventAttributes.signalName}`);
    if (e.workflowExecutionUpdateAdmittedEventAttributes) out.push('update admitted');
    if (e.workflowExecutionUpdateAcceptedEventAttributes)
      out.push(`update ${e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest?.input?.name ?? ''}`);
  }
  return out;
}

function auditLines(): Array<AuditLine & { seq: number }> {
  if (!existsSync(auditFile)) return [];
  return readFileSync(auditFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditLine & { seq: number });
}

const decisionsInAudit = () => auditLines().filter((l) => l.event !== 'step');

describe('lifeboat chatops on a real recovery run', () => {
  it('refuses forged, stale, unmapped and non-approver requests, and nothing reaches the workflow', async () => {
    const id = wf.workflowId;
    const before = await wf.query(statusQuery);
    const approve = slackBody('UALICE', `approve ${id} approve-fence`);

    const forged = await post(server.url, '/slack/commands', approve, signedHeaders('guessed-secret', approve));
    expect([forged.status, forged.outcome]).toEqual([401, 'bad-signature']);
    const tenMinutesAgo = String(Math.floor(Date.now() / 1000) - 600);
    const stale = await post(server.url, '/slack/commands', approve, signedHeaders(SECRET, approve, tenMinutesAgo));
    expect([stale.status, stale.outcome]).toEqual([401, 'stale-timestamp']);
    const unsigned = await post(
      server.url,
      '/v1/decide',
      JSON.stringify({ workflowId: id, step: 'approve-fence', decision: 'approve', user: 'ops:bob' }),
      {},
    );
    expect([unsigned.status, unsigned.outcome]).toEqual([401, 'missing-signature']);

    expect(await post(server.url, '/slack/commands', slackBody('UMALLORY', `approve ${id} approve-fence`))).toEqual({
      status: 200,
      outcome: 'unmapped-user',
      body: {
        response_type: 'ephemeral',
        text: "slack:UMALLORY (mallory) is not in Lifeboat's chat users table, so it cannot act as an approver: ask whoever runs lifeboat chatops to map it to your approver name (--users)",
      },
    });
    const unmapped = await post(
      server.url,
      '/v1/decide',
      JSON.stringify({ workflowId: id, step: 'approve-fence', decision: 'approve', user: 'ops:mallory' }),
    );
    expect([unmapped.status, unmapped.outcome]).toEqual([403, 'unmapped-user']);

    // carol is mapped, but not an approver of approve-fence.
    expect(
      await post(server.url, '/slack/commands', slackBody('UCAROL', `approve ${id} approve-fence let me`)),
    ).toEqual({
      status: 200,
      outcome: 'not-an-approver',
      body: {
        response_type: 'ephemeral',
        text: 'approve of approve-fence by carol: refused: NOT_AN_APPROVER: carol may not decide approve-fence; allowed: alice, bob (nothing was sent to the run)',
      },
    });
    expect(
      await post(
        server.url,
        '/v1/decide',
        JSON.stringify({ workflowId: id, step: 'approve-fence', decision: 'reject', user: 'ops:carol', reason: 'no' }),
      ),
    ).toEqual({
      status: 403,
      outcome: 'not-an-approver',
      body: {
        accepted: false,
        error: 'not-an-approver',
        message:
          'NOT_AN_APPROVER: carol may not decide approve-fence; allowed: alice, bob (nothing was sent to the run)',
      },
    });

    expect(await messagesInHistory()).toEqual([]);
    const after = await wf.query(statusQuery);
    expect(after).toEqual(before);
    expect(after.decisions).toEqual([]);
    expect(after.ignored).toEqual([]);
    expect(decisionsInAudit()).toEqual([]);
  });

  it("takes alice's approval from a Slack slash command, once: the same request again is a replay", async () => {
    const id = wf.workflowId;
    const body = slackBody('UALICE', `approve ${id} approve-fence fence it, replicas are lagging`);
    const headers = signedHeaders(SECRET, body);
    expect(await post(server.url, '/slack/commands', body, headers)).toEqual({
      status: 200,
      outcome: 'accepted',
      body: {
        response_type: 'in_channel',
        text: `approve of approve-fence by alice (slack:UALICE) on ${id}: accepted; approve-fence is now awaiting-approval: approved by alice, needs 2 of alice, bob\n${uiLine()}`,
      },
    });
    const replayed = await post(server.url, '/slack/commands', body, headers);
    expect([replayed.status, replayed.outcome]).toEqual([409, 'replayed']);
    // A new request (new timestamp or body) with the same words is no replay: the workflow refuses the repeat itself.
    const again = await post(server.url, '/slack/commands', slackBody('UALICE', `approve ${id} approve-fence`));
    expect(again).toEqual({
      status: 200,
      outcome: 'refused-by-workflow',
      body: {
        response_type: 'ephemeral',
        text: 'approve of approve-fence by alice: refused: DECISION_REFUSED: alice has already approved approve-fence: 2 distinct approvers are needed, 1 so far',
      },
    });
    // The refused repeat is in the history too (judged in the update's handler), and in status.ignored.
    expect(await messagesInHistory()).toEqual(['update decide', 'update decide']);
    const st = await wf.query(statusQuery);
    expect(st.decisions.map((d) => [d.step, d.decision, d.by, d.comment, d.via])).toEqual([
      ['approve-fence', 'approve', 'alice', 'fence it, replicas are lagging', 'update'],
    ]);
    expect(st.ignored.map((i) => [i.via, i.name, i.by, i.why])).toEqual([
      [
        'update',
        'decide approve',
        'alice',
        'alice has already approved approve-fence: 2 distinct approvers are needed, 1 so far',
      ],
    ]);
  });

  it("takes bob's approval from the JSON endpoint; both approvals are in the audit log under the approver names", async () => {
    const id = wf.workflowId;
    const res = await post(
      server.url,
      '/v1/decide',
      JSON.stringify({
        workflowId: id,
        step: 'approve-fence',
        decision: 'approve',
        user: 'ops:bob',
        comment: 'agreed',
      }),
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      accepted: true,
      workflowId: id,
      step: 'approve-fence',
      decision: 'approve',
      by: 'bob',
      state: 'done',
      ui: uiLink(),
      message: `approve of approve-fence by bob (ops:bob) on ${id}: accepted; approve-fence is now done\n${uiLine()}`,
    });
    expect(res.body.record).toMatchObject({ id: 'approve-fence', state: 'done', summary: 'approved by alice, bob' });

    const lines = await waitFor('both decisions in the audit log', async () => {
      const d = decisionsInAudit();
      return d.length >= 3 ? d : undefined;
    });
    // With alice's refused repeat between them, as every refusal is audited.
    expect(
      lines.map((l) => [
        l.event,
        l.decision?.step ?? l.ignored?.step,
        l.decision?.decision ?? l.ignored?.name,
        l.decision?.by ?? l.ignored?.by,
        l.decision?.comment,
        l.decision?.via ?? l.ignored?.via,
      ]),
    ).toEqual([
      ['decision', 'approve-fence', 'approve', 'alice', 'fence it, replicas are lagging', 'update'],
      ['ignored', 'approve-fence', 'decide approve', 'alice', undefined, 'update'],
      ['decision', 'approve-fence', 'approve', 'bob', 'agreed', 'update'],
    ]);
    expect(JSON.stringify(auditLines())).not.toMatch(/carol|mallory|UALICE|ops:bob/);
  });

  it('shows the status in Slack and as JSON, and aborts the run where disable-writers failed', async () => {
    const id = wf.workflowId;
    await waitStep('disable-writers', 'failed');
    const slack = await post(server.url, '/slack/commands', slackBody('UALICE', `status ${id}`));
    expect(slack.status).toBe(200);
    const text = String(slack.body.text).split('\n');
    expect(text[0]).toBe(`${id}: waiting; runbook chatops, target latest, incident INC-7`);
    expect(text[1]).toMatch(
      /^waiting: disable-writers failed \(RUNBOOK_INVALID: none of gates\.writers\.readOnlyRoles \(app\) can log in/,
    );
    expect(text[2]).toBe(`  /lifeboat retry|skip|abort ${id} disable-writers <reason>`);
    expect(text).toContain('  approve-fence: done (approved by alice, bob)');
    expect(text.at(-1)).toBe(uiLine());

    const json = await post(server.url, '/v1/status', JSON.stringify({ workflowId: id, user: 'ops:bob' }));
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({
      workflowId: id,
      running: true,
      ui: uiLink(),
      status: { runbook: 'chatops', pending: { step: 'disable-writers', kind: 'failed' } },
    });

    const abort = await post(
      server.url,
      '/v1/decide',
      JSON.stringify({
        workflowId: id,
        step: 'disable-writers',
        decision: 'abort',
        user: 'ops:bob',
        reason: 'test over',
      }),
    );
    expect(abort).toMatchObject({ status: 200, outcome: 'accepted', body: { by: 'bob', decision: 'abort' } });
    expect(
      await wf.result().then(
        () => 'completed',
        (e: unknown) => e,
      ),
    ).toBeInstanceOf(WorkflowFailedError);

    const ended = await post(
      server.url,
      '/v1/decide',
      JSON.stringify({ workflowId: id, step: 'disable-writers', decision: 'retry', user: 'ops:bob' }),
    );
    expect(ended).toMatchObject({
      status: 409,
      outcome: 'run-ended',
      body: { message: `${id} has ended (aborted): it takes no more decisions` },
    });
  });

  it('logged one line per request, with the approver and the outcome, never a secret, signature or body', () => {
    expect(
      logs.filter((l) =>
        /^chatops POST \/slack\/commands 200 accepted chatUser=slack:UALICE approver=alice decision=approve step=approve-fence workflowId=recover-chatops-\w+ \d+ms$/.test(
          l,
        ),
      ),
    ).toHaveLength(1);
    expect(
      logs.filter((l) =>
        /^chatops POST \/v1\/decide 403 not-an-approver chatUser=ops:carol approver=carol decision=reject step=approve-fence /.test(
          l,
        ),
      ),
    ).toHaveLength(1);
    for (const line of logs) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toMatch(/v0=|replicas are lagging|agreed|[{}&"]/);
    }
  });

  it('the lifeboat binary refuses to start without the signing secret, and serves with it', async () => {
    const bin = path.join(projectRoot(), 'bin/lifeboat');
    const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: temporalAddress() };
    delete env.LIFEBOAT_CHATOPS_SIGNING_SECRET;
    const refused = await runToEnd(
      spawn(bin, ['chatops', '--port', '0', '--users', usersFile], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'lifeboat: no signing secret: LIFEBOAT_CHATOPS_SIGNING_SECRET is not set, and every request would have to be refused\n' +
        "HINT: export LIFEBOAT_CHATOPS_SIGNING_SECRET=<the Slack app's Signing Secret (Basic Information > App Credentials)>, or a random one shared with your bot\n" +
        'HINT: --secret-env <NAME> reads it from another variable; it is never taken from a flag\n',
    );

    const noUsers = await runToEnd(
      spawn(bin, ['chatops', '--port', '0', '--users', '/nonexistent/users.yaml'], {
        env: { ...env, LIFEBOAT_CHATOPS_SIGNING_SECRET: SECRET },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    expect(noUsers.code).toBe(2);
    expect(noUsers.stderr).toBe(
      "lifeboat: cannot read the chat users file /nonexistent/users.yaml: ENOENT: no such file or directory, open '/nonexistent/users.yaml'\n" +
        'HINT: one line per chat user, e.g. "slack:U024BE7LH: alice" (YAML), or a list of { chatUser, approver }\n',
    );

    const child = spawn(bin, ['chatops', '--port', '0', '--users', usersFile, '--secret-env', 'MY_BOT_SECRET'], {
      env: { ...env, MY_BOT_SECRET: SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    cleanups.push(() => (child.exitCode === null ? stopChild(child) : undefined));
    const url = await waitFor(
      'lifeboat chatops to listen',
      async () => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1],
      { timeoutMs: 30_000 },
    );
    expect(out).toContain(
      `Temporal ${temporalAddress()} namespace default, plaintext (no TLS); 4 chat user(s) mapped; requests signed with MY_BOT_SECRET; 20 requests a minute per chat user`,
    );
    const health = await fetch(`${url}/healthz`);
    expect([health.status, await health.json()]).toEqual([200, { ok: true, temporal: true }]);
    const status = await post(url, '/slack/commands', slackBody('UALICE', `status ${wf.workflowId}`));
    expect(status.status).toBe(200);
    expect(String(status.body.text).split('\n')[0]).toBe(
      `${wf.workflowId}: ended (aborted); runbook chatops, target latest, incident INC-7`,
    );
    child.kill('SIGTERM');
    const exit = await runToEnd(child);
    expect(exit.code).toBe(0);
    expect(out).not.toContain(SECRET);
    expect(out).toMatch(
      /Z chatops POST \/slack\/commands 200 status chatUser=slack:UALICE approver=alice decision=status workflowId=recover-chatops-\w+ \d+ms\n/,
    );
  });
});

function runToEnd(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve({ code: child.exitCode, stderr });
    else child.once('exit', (code) => resolve({ code, stderr }));
  });
}
