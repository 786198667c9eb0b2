// `lifeboat pending` with the real binary against a real recovery: the run is
// listed while it waits at approve-fence (found by the LifeboatAwaiting search
// attribute, detailed by its status query), is no longer listed there once
// approved, is listed again at approve-promote, and after a rejection nothing
// is pending. Visibility is eventually consistent, so every look polls with a
// deadline.
import { execFile, spawn } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import type { PendingRun } from '../../src/cli/commands/pending';
import { statusQuery } from '../../src/recovery/messages';
import { stopChild } from '../../src/dev/child';
import { ensureSearchAttributes } from '../../src/recovery/search-attributes';
import { projectRoot, requireTool } from '../../src/tools';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { backedUpCluster, recoveryWorkers } from '../harness/recovery-cluster';
import { switchAndWaitArchived } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';

const exec = promisify(execFile);
const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

async function lifeboat(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // No UI link unless a test asks for one: the shared Temporal is headless.
  return lifeboatWith({ ...process.env, LIFEBOAT_UI_URL: '' }, ...args);
}

async function lifeboatWith(
  env: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(path.join(projectRoot(), 'bin/lifeboat'), [...args, '--address', temporalAddress()], { env });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('lifeboat pending', () => {
  it('lists a real recovery while it waits at approve-fence, drops it once approved, lists it at approve-promote, and says nothing is pending after the rejection', async () => {
    const cluster = await backedUpCluster('pending', cleanups);
    const { tc, name } = cluster;
    await tc.pg.query(`create table t as select g as id from generate_series(1, 1000) g`);
    await switchAndWaitArchived(tc.pg);

    const { client, taskQueue } = await recoveryWorkers(cluster, cleanups);
    const workflowId = `recover-${name}`;
    const wf = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId,
      args: [{ runbook: name, target: { latest: true }, incident: 'INC-77', reason: 'pending test' }],
    });

    const pendingJson = async () => {
      const r = await lifeboat('pending', '--runbook', name, '--json');
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as PendingRun[];
    };
    const waitListed = (step: string) =>
      waitFor(
        `lifeboat pending to list ${step}`,
        async () => ((await pendingJson()).some((p) => p.pending?.step === step) ? true : undefined),
        { timeoutMs: 150_000, intervalMs: 500 },
      );

    // 1. Waiting at approve-fence: listed, with who may approve, how many, since when and the commands.
    await waitListed('approve-fence');
    const status = await wf.query(statusQuery);
    const since = status.pending!.since;
    const text = await lifeboat('pending', '--runbook', name);
    expect(text.code).toBe(0);
    expect(text.stdout.replace(/\((\d+ s|\d+ min \d+ s)\)$/m, '(<waited>)')).toBe(
      [
        `1 recovery waits for a decision (runbook ${name}, namespace default at ${temporalAddress()}):`,
        '',
        `${workflowId}  runbook ${name}  INC-77  to the end of the archive`,
        `  approve-fence: needs 1 more approval from alice; waiting since ${since} (<waited>)`,
        `  lifeboat approve ${workflowId} approve-fence --as <who> [--comment <text>]`,
        `  lifeboat reject ${workflowId} approve-fence --as <who> --reason <text>`,
        '',
      ].join('\n'),
    );
    const [listed] = await pendingJson();
    expect(listed).toMatchObject({
      workflowId,
      runbook: name,
      awaiting: ['approve-fence'],
      pending: {
        step: 'approve-fence',
        kind: 'approval',
        approvers: ['alice'],
        min: 1,
        approvedBy: [],
        stillNeeded: 1,
      },
    });
    // With the Temporal UI's address known, each run ends with the link to its checklist tab.
    const linked = await lifeboatWith(
      { ...process.env, LIFEBOAT_UI_URL: 'http://ui.example:8080' },
      'pending',
      '--runbook',
      name,
    );
    expect(linked.stdout.trimEnd().split('\n').slice(-2)).toEqual([
      `  Temporal UI, the run's "User Metadata" tab (Current Details: the checklist; the page does not refresh itself, press R for the latest):`,
      `  http://ui.example:8080/namespaces/default/workflows/${workflowId}/${wf.firstExecutionRunId}/user-metadata`,
    ]);
    // Without --runbook the run is among all pending ones.
    expect((await lifeboat('pending')).stdout).toContain(`${workflowId}  runbook ${name}`);

    // 2. Approved: no longer listed at approve-fence; later it waits at approve-promote.
    const approved = await lifeboat('approve', workflowId, 'approve-fence', '--as', 'alice');
    expect(approved.code).toBe(0);
    await waitFor(
      'approve-fence to leave the list',
      async () =>
        (await pendingJson()).every((p) => p.pending?.step !== 'approve-fence' && !p.awaiting.includes('approve-fence'))
          ? true
          : undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    await waitListed('approve-promote');
    expect((await lifeboat('pending', '--runbook', name)).stdout).toContain(
      `  lifeboat retarget ${workflowId} --to-time <iso>|--to-lsn <lsn>|... --as <who>`,
    );

    // 3. Rejected: the run ends and nothing is pending for this runbook.
    expect(
      (await lifeboat('reject', workflowId, 'approve-promote', '--as', 'alice', '--reason', 'test over')).code,
    ).toBe(0);
    const nothing = await waitFor(
      'nothing pending',
      async () => {
        const r = await lifeboat('pending', '--runbook', name);
        return r.stdout.startsWith('nothing pending') ? r.stdout : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(nothing).toBe(
      [
        `nothing pending: no running recovery waits for a decision (runbook ${name}, namespace default at ${temporalAddress()})`,
        '  a decision given in the last second or two may still show here; running recoveries: lifeboat status <workflowId>',
        '',
      ].join('\n'),
    );
    await expect(wf.result()).rejects.toThrow();
  });

  it('registers LifeboatRunbook and LifeboatAwaiting on a server that lacks them (what every worker does before polling), and leaves them be the next time', async () => {
    // A bare dev server, started without the --search-attribute flags ours get.
    const port = await freePort();
    const child = spawn(
      requireTool('temporal'),
      ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--headless', '--log-level', 'error'],
      { stdio: 'ignore' },
    );
    cleanups.push(() => stopChild(child));
    const connection = await waitFor(
      'the bare server',
      () => Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: 1000 }).catch(() => undefined),
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    cleanups.push(() => connection.close());
    const before = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    expect(Object.keys(before.customAttributes ?? {}).filter((k) => k.startsWith('Lifeboat'))).toEqual([]);
    expect(await ensureSearchAttributes(connection.operatorService, 'default')).toEqual([
      'LifeboatRunbook',
      'LifeboatAwaiting',
    ]);
    const after = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    // IndexedValueType 2 = Keyword, 7 = KeywordList.
    expect({
      LifeboatRunbook: after.customAttributes?.LifeboatRunbook,
      LifeboatAwaiting: after.customAttributes?.LifeboatAwaiting,
    }).toEqual({ LifeboatRunbook: 2, LifeboatAwaiting: 7 });
    expect(await ensureSearchAttributes(connection.operatorService, 'default')).toEqual([]);
  });
});
