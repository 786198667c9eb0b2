// `lifeboat repair` as an operator types it: targets in one word, usage
// errors refused with exit 2 before Temporal is asked, --help that shows the
// seed incident's commands, and a dry run started on the test Temporal
// server with the input and the lines that say what to do next. Runs the
// built CLI (after editing, run `npx tsc -p .`).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { targetFromWord } from '../../src/cli/commands/repair';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { temporalAddress } from '../harness/services';

const exec = promisify(execFile);
const MAIN = path.resolve(__dirname, '../../dist/src/cli/main.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-repair-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function lifeboat(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [MAIN, ...args], {
      env: { ...process.env, LIFEBOAT_RUNBOOKS_DIR: tmp, NO_COLOR: '1', LIFEBOAT_UI_URL: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('repair targets in one word', () => {
  it('read a time with its zone, a restore point, an LSN and a transaction id', () => {
    expect(targetFromWord('--before', '2026-06-04T14:31:59Z')).toEqual({ time: '2026-06-04T14:31:59Z' });
    expect(targetFromWord('--after', 'name:after-bad-update')).toEqual({ name: 'after-bad-update' });
    expect(targetFromWord('--after', '0/3000060')).toEqual({ lsn: '0/3000060' });
    expect(targetFromWord('--after', 'lsn:0/3000060')).toEqual({ lsn: '0/3000060' });
    expect(targetFromWord('--after', 'xid:7421')).toEqual({ xid: '7421' });
  });

  it('refuse a time without its zone under the flag the operator typed', () => {
    expect(() => targetFromWord('--before', '2026-06-04 14:31:59')).toThrow(
      /^--before "2026-06-04 14:31:59" has no time zone: /,
    );
  });
});

describe('lifeboat repair', () => {
  it('--help names every flag and shows the seed incident repaired', async () => {
    const { code, stdout } = await lifeboat(['repair', '--help']);
    expect(code).toBe(0);
    for (const flag of ['--tables', '--where', '--before', '--after', '--dry-run', '--keep-copy', '--follow'])
      expect(stdout).toContain(flag);
    expect(stdout.replace(/\s+/g, ' ')).toContain('repair rows damaged by a bad statement WITHOUT failover');
    expect(stdout).toContain('lifeboat approve <workflowId> approve-repair --as alice [--include changedSince]');
  });

  it('refuses a run without --tables or with a zoneless --before, exit 2, before Temporal is asked', async () => {
    const noTables = await lifeboat(['repair', '--runbook', 'orders', '--before', '2026-06-04T14:31:59Z']);
    expect(noTables.code).toBe(2);
    expect(noTables.stderr.split('\n')[0]).toBe(
      'lifeboat: repair needs --tables: the tables whose rows to compare and restore, e.g. --tables public.orders',
    );
    const zoneless = await lifeboat([
      'repair',
      '--runbook',
      'orders',
      '--tables',
      'orders',
      '--before',
      '2026-06-04 14:31',
    ]);
    expect(zoneless.code).toBe(2);
    expect(zoneless.stderr.split('\n')[0]).toBe(
      'lifeboat: --before "2026-06-04 14:31" has no time zone: this machine, the workers and PostgreSQL could each read it differently',
    );
    const badTable = await lifeboat(
      ['repair', '--runbook', 'orders', '--tables', 'orders;drop', '--before', '2026-06-04T14:31:59Z'],
      { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    );
    expect(badTable.code).toBe(2);
    expect(badTable.stderr).toBe(
      'lifeboat: repair: --tables: expected a table name such as "orders" or "shop.orders"\n',
    );
  });

  it('starts repairFromPointInTime with the validated input and prints its id, how to approve and the UI link', async () => {
    writeFileSync(
      path.join(tmp, 'orders.yaml'),
      demoRunbookYaml({
        name: 'orders',
        pgPort: 1,
        repoUrl: `file://${tmp}/repo`,
        host: 'repair-cli-test',
        stateDir: tmp,
        restorePort: 2,
        drillPort: 3,
      }),
    );
    const client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
    const workflowId = `repair-orders-cli-test-${process.pid}-${Date.now()}`;
    try {
      const { code, stdout, stderr } = await lifeboat(
        [
          'repair',
          '--runbook',
          'orders',
          '--tables',
          'public.orders',
          '--before',
          '2026-06-04T14:31:59Z',
          '--after',
          'xid:7421',
          '--where',
          "status = 'canceled'",
          '--incident',
          'INC-1234',
          '--workflow-id',
          workflowId,
        ],
        { TEMPORAL_ADDRESS: temporalAddress(), LIFEBOAT_UI_URL: 'http://ui.example:8080/' },
      );
      const handle = client.workflow.getHandle(workflowId);
      // A worker of another test file may poll `lifeboat`: end the run before it does much.
      await handle.terminate('terminated by the repair CLI test').catch(() => undefined);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const runId = (await handle.describe()).runId;
      expect(stdout).toBe(
        [
          `started repairFromPointInTime ${workflowId}`,
          '  INC-1234: repair public.orders of orders from time 2026-06-04T14:31:59Z / transaction 7421',
          "  on task queue lifeboat: a worker must poll it (lifeboat worker), and the drill host's worker its host queue",
          'next:',
          `  lifeboat status ${workflowId} --watch`,
          `  lifeboat approve ${workflowId} approve-repair --as <you>   (restores damaged and deleted rows; conflicts are left)`,
          `  lifeboat approve ${workflowId} approve-repair --as <you> --include changedSince   (also overwrites rows changed since the incident)`,
          `  Temporal UI, the run's "User Metadata" tab (Current Details: the checklist; the page does not refresh itself, press R for the latest):`,
          `  http://ui.example:8080/namespaces/default/workflows/${workflowId}/${runId}/user-metadata`,
          '',
        ].join('\n'),
      );
      const history = await handle.fetchHistory();
      const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
      expect(JSON.parse(Buffer.from(payload!).toString('utf8'))).toEqual({
        runbook: 'orders',
        tables: ['public.orders'],
        before: { time: '2026-06-04T14:31:59Z' },
        after: { xid: '7421' },
        where: "status = 'canceled'",
        incident: 'INC-1234',
      });
      expect((await handle.describe()).type).toBe('repairFromPointInTime');
    } finally {
      await client.connection.close();
    }
  });
});
