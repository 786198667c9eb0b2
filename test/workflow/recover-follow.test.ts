// `lifeboat recover --follow` on a run whose preflight fails for good
// (issue 11, point 5: it used to wait for a decision forever, and the watch
// with it). The CLI as built (dist/), the real workflow on the real Temporal
// dev server, fake activities. The worker polls `lifeboat`, the queue the CLI
// always starts on, so it gets a namespace of its own: other test files'
// workers poll `lifeboat` in `default`.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, expect, it } from 'vitest';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { ensureSearchAttributes } from '../../src/recovery/search-attributes';
import { TASK_QUEUE } from '../../src/runbook/schema';
import { requireTool } from '../../src/tools';
import { NOTHING_TOUCHED_HINT } from '../../workflows/recovery/machine';
import { waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';
import { fakeActivities, testRunbook, workflowBundle, type Calls } from './recovery-harness';
import { runCleanups } from '../harness/cleanups';

const exec = promisify(execFile);
const MAIN = path.resolve(__dirname, '../../dist/src/cli/main.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-recover-follow-'));
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(tmp, { recursive: true, force: true });
});

it('recover --follow of a target before the oldest backup ends by itself: exit 1, the error with its hints, nothing touched', async () => {
  const namespace = `lifeboat-follow-${process.pid}-${Date.now().toString(36)}`;
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  await exec(requireTool('temporal'), [
    'operator',
    'namespace',
    'create',
    '--address',
    temporalAddress(),
    '--namespace',
    namespace,
  ]);
  cleanups.push(() => connection.operatorService.deleteNamespace({ namespace }));
  // A new namespace reaches the server's caches within seconds; wait for it rather than guess.
  await waitFor(
    `namespace ${namespace}`,
    () => connection.workflowService.describeNamespace({ namespace }).catch(() => undefined),
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await ensureSearchAttributes(connection.operatorService, namespace);

  const noBackup = [
    'no backup of cluster orders finished before time 2020-01-01T00:00:00Z: the oldest, 20261121T120000Z, finished at 2026-11-21T12:00:05Z',
    'HINT: recover to a time after 2026-11-21T12:00:05Z',
  ].join('\n');
  const calls: Calls = { log: [], audit: [], evidence: [] };
  const activities = fakeActivities(testRunbook('orders', 'follow-test'), calls, {
    failures: { preflight: [{ type: 'BACKUP_NOT_FOUND', message: noBackup }] },
  });
  const nc = await NativeConnection.connect({ address: temporalAddress() });
  cleanups.push(() => nc.close());
  const bundle = await workflowBundle();
  const worker = await waitFor(
    'a worker in the new namespace',
    () =>
      Worker.create({ connection: nc, namespace, taskQueue: TASK_QUEUE, workflowBundle: bundle, activities }).catch(
        () => undefined,
      ),
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  const running = worker.run();
  cleanups.push(async () => {
    worker.shutdown();
    await running;
  });

  writeFileSync(
    path.join(tmp, 'orders.yaml'),
    demoRunbookYaml({
      name: 'orders',
      pgPort: 1,
      repoUrl: `file://${tmp}/repo`,
      host: 'follow-test',
      stateDir: tmp,
      restorePort: 2,
      drillPort: 3,
    }),
  );
  const workflowId = `recover-orders-follow-${process.pid}`;
  const r = await exec(
    process.execPath,
    [
      MAIN,
      'recover',
      '--runbook',
      'orders',
      '--to-time',
      '2020-01-01T00:00:00Z',
      '--follow',
      '--interval',
      '1',
      '--namespace',
      namespace,
      '--workflow-id',
      workflowId,
    ],
    {
      env: {
        ...process.env,
        LIFEBOAT_RUNBOOKS_DIR: tmp,
        TEMPORAL_ADDRESS: temporalAddress(),
        NO_COLOR: '1',
        LIFEBOAT_UI_URL: '',
      },
    },
  ).then(
    (ok) => ({ code: 0, ...ok }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
  expect(r.code).toBe(1);
  expect(r.stdout).toContain('  [!] preflight');
  expect(r.stdout).toContain('BACKUP_NOT_FOUND: no backup of cluster orders finished before time 2020-01-01T00:00:00Z');
  expect(r.stdout).toMatch(/^Closed: FAILED at /m);
  // The failure, with every hint, ends the output; no decision is offered.
  expect(r.stdout.trimEnd().split('\n').slice(-3)).toEqual([
    '  BACKUP_NOT_FOUND: no backup of cluster orders finished before time 2020-01-01T00:00:00Z: the oldest, 20261121T120000Z, finished at 2026-11-21T12:00:05Z',
    '  HINT: recover to a time after 2026-11-21T12:00:05Z',
    `  HINT: ${NOTHING_TOUCHED_HINT}`,
  ]);
  expect(r.stdout).not.toContain('lifeboat retry');
  expect(calls.log.map((l) => l.split(' ')[0])).toEqual(['preflight']);
});
