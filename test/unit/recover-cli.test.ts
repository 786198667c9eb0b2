// The recovery commands as an operator types them: one target flag and a
// time with its zone, a step id with "did you mean", --as and --reason where
// a decision needs them, all refused with exit 2 before Temporal is asked;
// and `lifeboat recover` starting a run on the test Temporal server with the
// input, summary and details the UI shows. Runs the built CLI (npm test
// builds first; after editing, run `npx tsc -p .`).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nearestStep, stepFromArgument, targetFromFlags, type TargetFlags } from '../../src/cli/target-options';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { temporalAddress } from '../harness/services';

const exec = promisify(execFile);
const MAIN = path.resolve(__dirname, '../../dist/src/cli/main.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-recover-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function lifeboat(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [MAIN, ...args], {
      env: { ...process.env, LIFEBOAT_RUNBOOKS_DIR: '/nonexistent', NO_COLOR: '1', LIFEBOAT_UI_URL: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function targetError(flags: TargetFlags): string {
  try {
    targetFromFlags(flags, 'recover');
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the flags to be refused');
}

describe('target flags', () => {
  it('refuse no target, naming every flag, with examples', () => {
    expect(targetError({})).toBe(
      [
        'recover needs a target: pass exactly one of --to-time, --to-name, --to-lsn, --to-xid, --to-latest',
        'HINT: e.g. --to-time 2026-06-04T14:31:59Z (just before the incident, with its zone)',
        'HINT: --to-name <restore point> (from lifeboat checkpoint), --to-lsn 0/3000060, --to-xid 7421, or --to-latest (the end of the archive)',
      ].join('\n'),
    );
  });

  it('refuse two targets, naming both', () => {
    expect(targetError({ toTime: '2026-06-04T14:31:59Z', toLatest: true })).toBe(
      'recover takes one target, got --to-time and --to-latest: pass exactly one of --to-time, --to-name, --to-lsn, --to-xid, --to-latest',
    );
  });

  it('refuse a time without a zone, showing the accepted forms', () => {
    expect(targetError({ toTime: '2026-06-04 14:31:59' })).toBe(
      [
        '--to-time "2026-06-04 14:31:59" has no time zone: this machine, the workers and PostgreSQL could each read it differently',
        'HINT: accepted forms: 2026-06-04T14:31:59Z, 2026-06-04T16:31:59+02:00, "2026-06-04 14:31:59+00"',
        'HINT: Z means UTC; the incident timeline in most tools is in UTC',
      ].join('\n'),
    );
  });

  it('refuse values that are not a time, an LSN or a transaction id, with what was expected', () => {
    expect(targetError({ toTime: 'yesterday' })).toBe(
      [
        '--to-time "yesterday": expected an ISO 8601 time with a zone, e.g. "2026-06-04T14:31:59Z"',
        'HINT: accepted forms: 2026-06-04T14:31:59Z, 2026-06-04T16:31:59+02:00, "2026-06-04 14:31:59+00"',
      ].join('\n'),
    );
    expect(targetError({ toLsn: '3000060' })).toBe('--to-lsn "3000060": expected an LSN such as "0/3000060"');
    expect(targetError({ toXid: 'abc' })).toBe('--to-xid "abc": expected a transaction id (a positive integer)');
  });

  it('give the contract Target for each flag', () => {
    expect(targetFromFlags({ toTime: '2026-06-04 16:31:59+02' }, 'recover')).toEqual({
      time: '2026-06-04 16:31:59+02',
    });
    expect(targetFromFlags({ toName: 'before-migration-42' }, 'recover')).toEqual({ name: 'before-migration-42' });
    expect(targetFromFlags({ toLsn: '16/B374D848' }, 'recover')).toEqual({ lsn: '16/B374D848' });
    expect(targetFromFlags({ toXid: '7421' }, 'recover')).toEqual({ xid: '7421' });
    expect(targetFromFlags({ toLatest: true }, 'recover')).toEqual({ latest: true });
  });
});

describe('step arguments', () => {
  it('suggest the step meant by a typo or a missing prefix', () => {
    expect(nearestStep('aprove-promote')).toBe('approve-promote');
    expect(nearestStep('fence')).toBe('approve-fence');
    expect(nearestStep('replay')).toBe('replay-wal');
    expect(nearestStep('xyz')).toBeUndefined();
    expect(stepFromArgument(' run-invariants ')).toBe('run-invariants');
  });
});

describe('lifeboat recover --help', () => {
  it('lists every flag', async () => {
    const { code, stdout } = await lifeboat(['recover', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: lifeboat recover \[options\]$/m);
    for (const flag of [
      '--runbook <name|file>',
      '--runbooks-dir <dir>',
      '--to-time <iso>',
      '--to-name <name>',
      '--to-lsn <lsn>',
      '--to-xid <xid>',
      '--to-latest',
      '--incident <id>',
      '--reason <text>',
      '--mode <mode>',
      '--dry-run',
      '--backup <id>',
      '--concurrent',
      '--workflow-id <id>',
      '--follow',
      '--interval <s>',
      '--json',
      '--address <host:port>',
      '--namespace <ns>',
    ]) {
      expect(stdout).toContain(`  ${flag}`);
    }
    expect(stdout).toContain('(choices: "side-by-side", "in-place")');
  });

  it.each(['approve', 'reject', 'retry', 'skip', 'abort'])(
    'explains `%s <workflowId> <step>` and its flags',
    async (decision) => {
      const { code, stdout } = await lifeboat([decision, '--help']);
      expect(code).toBe(0);
      expect(stdout).toMatch(new RegExp(`^Usage: lifeboat ${decision} \\[options\\] <workflowId> <step>$`, 'm'));
      for (const flag of ['--as <who>', '--comment <text>', '--reason <text>', '--signal', '--json'])
        expect(stdout).toContain(`  ${flag}`);
    },
  );

  it('explains retarget and status', async () => {
    const retarget = await lifeboat(['retarget', '--help']);
    expect(retarget.stdout).toMatch(/^Usage: lifeboat retarget \[options\] <workflowId>$/m);
    for (const flag of ['--to-time <iso>', '--to-latest', '--as <who>']) expect(retarget.stdout).toContain(`  ${flag}`);
    const status = await lifeboat(['status', '--help']);
    expect(status.stdout).toMatch(/^Usage: lifeboat status \[options\] <workflowId>$/m);
    for (const flag of ['--watch', '--interval <s>', '--json']) expect(status.stdout).toContain(`  ${flag}`);
  });
});

describe('bad usage exits 2 before anything is sent', () => {
  it('a recover without a target', async () => {
    const { code, stderr } = await lifeboat(['recover', '--runbook', 'orders']);
    expect(code).toBe(2);
    expect(stderr).toBe(
      [
        'lifeboat: recover needs a target: pass exactly one of --to-time, --to-name, --to-lsn, --to-xid, --to-latest',
        'HINT: e.g. --to-time 2026-06-04T14:31:59Z (just before the incident, with its zone)',
        'HINT: --to-name <restore point> (from lifeboat checkpoint), --to-lsn 0/3000060, --to-xid 7421, or --to-latest (the end of the archive)',
        '',
      ].join('\n'),
    );
  });

  it('a recover with a time without zone', async () => {
    const { code, stderr } = await lifeboat(['recover', '--runbook', 'orders', '--to-time', '2026-06-04 14:31:59']);
    expect(code).toBe(2);
    expect(stderr).toContain('lifeboat: --to-time "2026-06-04 14:31:59" has no time zone');
  });

  it('a backup id that is not one', async () => {
    writeFileSync(path.join(tmp, 'orders.yaml'), runbookYaml());
    const { code, stderr } = await lifeboat(['recover', '--runbook', 'orders', '--to-latest', '--backup', 'latest'], {
      LIFEBOAT_RUNBOOKS_DIR: tmp,
    });
    expect(code).toBe(2);
    expect(stderr).toBe('lifeboat: recover: --backup: expected a backup id such as 20261121T190102Z\n');
  });

  it('a step that does not exist, with the one meant', async () => {
    const { code, stderr } = await lifeboat(['approve', 'recover-orders-1', 'aprove-promote', '--as', 'alice']);
    expect(code).toBe(2);
    expect(stderr.split('\n')[0]).toBe('lifeboat: unknown step "aprove-promote": did you mean "approve-promote"?');
    expect(stderr).toContain('HINT: steps: preflight, capture-forensics, approve-fence,');
  });

  it('a decision without --as, and reject, skip or abort without --reason', async () => {
    const noWho = await lifeboat(['approve', 'recover-orders-1', 'approve-promote']);
    expect(noWho.code).toBe(2);
    expect(noWho.stderr.split('\n')[0]).toBe(
      'lifeboat: approve needs --as <who>: the name the runbook lists as an approver',
    );
    for (const decision of ['reject', 'skip', 'abort']) {
      const { code, stderr } = await lifeboat([
        decision,
        'recover-orders-1',
        'invalidate-caches',
        '--as',
        'alice',
        '--comment',
        'fine',
      ]);
      expect(code).toBe(2);
      expect(stderr.split('\n')[0]).toBe(
        `lifeboat: ${decision} needs --reason <text>: why, in words the audit log and the evidence keep`,
      );
    }
  });
});

function runbookYaml(): string {
  return demoRunbookYaml({
    name: 'orders',
    pgPort: 1,
    repoUrl: `file://${tmp}/repo`,
    host: 'recover-cli-test',
    stateDir: tmp,
    restorePort: 2,
    drillPort: 3,
  });
}

describe('lifeboat recover against the Temporal server', () => {
  let client: Client;
  const env = () => ({ LIFEBOAT_RUNBOOKS_DIR: tmp, TEMPORAL_ADDRESS: temporalAddress() });
  beforeAll(async () => {
    writeFileSync(path.join(tmp, 'orders.yaml'), runbookYaml());
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });
  afterAll(async () => {
    await client?.connection.close();
  });

  it('starts recoverToPointInTime with the validated input, a summary and details for the UI, and says what to do next', async () => {
    const workflowId = `recover-orders-cli-test-${process.pid}-${Date.now()}`;
    const { code, stdout, stderr } = await lifeboat(
      [
        'recover',
        '--runbook',
        'orders',
        '--to-xid',
        '7421',
        '--incident',
        'INC-1234',
        '--reason',
        'bad UPDATE on orders',
        '--dry-run',
        '--concurrent',
        '--workflow-id',
        workflowId,
      ],
      { ...env(), LIFEBOAT_UI_URL: 'http://ui.example:8080/' },
    );
    const handle = client.workflow.getHandle(workflowId);
    // A worker of another test file may poll `lifeboat`: end the run before it does much.
    await handle.terminate('terminated by the recover CLI test').catch(() => undefined);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe(
      [
        `started recoverToPointInTime ${workflowId}`,
        '  INC-1234: recover orders to transaction 7421 (dry run)',
        "  on task queue lifeboat: a worker must poll it (lifeboat worker), and the restore host's worker its host queue",
        'next:',
        `  lifeboat status ${workflowId} --watch`,
        `  Temporal UI, the run's "User Metadata" tab (Current Details: the checklist; the page does not refresh itself, press R for the latest):`,
        `  http://ui.example:8080/namespaces/default/workflows/${workflowId}/${(await handle.describe()).runId}/user-metadata`,
        '',
      ].join('\n'),
    );

    const description = await handle.describe();
    expect(description.type).toBe('recoverToPointInTime');
    expect(description.taskQueue).toBe('lifeboat');
    expect(await description.staticSummary()).toBe('**INC-1234** recover `orders` to transaction 7421 (dry run)');
    expect(await description.staticDetails()).toBe(
      [
        '| | |',
        '|---|---|',
        '| runbook | orders |',
        '| target | transaction 7421 |',
        '| incident | INC-1234 |',
        '| reason | bad UPDATE on orders |',
        "| mode | the runbook's restore.mode |",
        '| dry run | yes: preflight, forensics and invariants only; no gate, no traffic |',
        '| backup | chosen by preflight |',
        `| started by | ${os.userInfo().username}@${os.hostname()} |`,
      ].join('\n'),
    );
    const history = await handle.fetchHistory();
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    expect(JSON.parse(Buffer.from(payload!).toString('utf8'))).toEqual({
      runbook: 'orders',
      target: { xid: '7421' },
      incident: 'INC-1234',
      reason: 'bad UPDATE on orders',
      dryRun: true,
      concurrent: true,
    });
    // LifeboatRunbook from the start event on, for the one-recovery-per-runbook check of later runs.
    const attrs =
      history.events?.[0]?.workflowExecutionStartedEventAttributes?.searchAttributes?.indexedFields?.LifeboatRunbook
        ?.data;
    expect(JSON.parse(Buffer.from(attrs!).toString('utf8'))).toBe('orders');

    // The run is closed now: status says how it ended and exits 1; decisions are refused.
    const status = await lifeboat(['status', workflowId], env());
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^Closed: TERMINATED at \d{4}-\d\d-\d\dT[\d:.]+Z$/m);
    expect(status.stdout).toContain('\n  terminated by the recover CLI test\n');
    // With a UI known, status ends with the link to the run's checklist tab.
    const linked = await lifeboat(['status', workflowId], { ...env(), LIFEBOAT_UI_URL: 'http://ui.example:8080' });
    expect(linked.stdout.trimEnd().split('\n').slice(-3)).toEqual([
      '',
      `Temporal UI, the run's "User Metadata" tab (Current Details: the checklist; the page does not refresh itself, press R for the latest):`,
      `  http://ui.example:8080/namespaces/default/workflows/${workflowId}/${description.runId}/user-metadata`,
    ]);
    const linkedJson = JSON.parse(
      (await lifeboat(['status', workflowId, '--json'], { ...env(), LIFEBOAT_UI_URL: 'http://ui.example:8080' }))
        .stdout,
    ) as { runId: string; ui: string };
    expect(linkedJson).toMatchObject({
      runId: description.runId,
      ui: `http://ui.example:8080/namespaces/default/workflows/${workflowId}/${description.runId}/user-metadata`,
    });
    const approve = await lifeboat(['approve', workflowId, 'approve-fence', '--as', 'alice'], env());
    expect(approve.code).toBe(1);
    expect(approve.stderr).toBe(
      `lifeboat: workflow ${workflowId} has already ended; it takes no more decisions\nHINT: lifeboat status ${workflowId} shows how it ended\n`,
    );
  });

  it('without LIFEBOAT_UI_URL and with no Temporal UI beside the frontend, prints how to get a link instead of a wrong one', async () => {
    const workflowId = `recover-orders-cli-test-noui-${process.pid}-${Date.now()}`;
    const { code, stdout } = await lifeboat(
      ['recover', '--runbook', 'orders', '--to-latest', '--dry-run', '--concurrent', '--workflow-id', workflowId],
      env(),
    );
    await client.workflow
      .getHandle(workflowId)
      .terminate('terminated by the recover CLI test')
      .catch(() => undefined);
    expect(code).toBe(0);
    const port = Number(temporalAddress().split(':').at(-1));
    expect(stdout.trimEnd().split('\n').slice(-3)).toEqual([
      'next:',
      `  lifeboat status ${workflowId} --watch`,
      `  (no Temporal UI link: http://127.0.0.1:${port + 1000} (where a dev server for ${temporalAddress()} keeps its UI) does not answer as one; pass --ui-url or set LIFEBOAT_UI_URL to your Temporal Web UI's address (e.g. export LIFEBOAT_UI_URL=https://temporal.example.com) to get one here)`,
    ]);
    expect(stdout).not.toContain('8233/namespaces');
  });

  it('refuses a workflow id that is already running, and points at it', async () => {
    const workflowId = `recover-orders-cli-test-dup-${process.pid}-${Date.now()}`;
    const first = await lifeboat(
      ['recover', '--runbook', 'orders', '--to-latest', '--workflow-id', workflowId, '--json'],
      env(),
    );
    try {
      expect(first.code).toBe(0);
      expect(JSON.parse(first.stdout)).toMatchObject({
        workflowId,
        input: { runbook: 'orders', target: { latest: true }, dryRun: false },
      });
      const second = await lifeboat(
        ['recover', '--runbook', 'orders', '--to-latest', '--workflow-id', workflowId],
        env(),
      );
      expect(second.code).toBe(2);
      expect(second.stderr).toBe(
        [
          `lifeboat: a workflow with id ${workflowId} is already running in namespace default`,
          `HINT: follow it: lifeboat status ${workflowId} --watch`,
          'HINT: or pass another --workflow-id',
          '',
        ].join('\n'),
      );
    } finally {
      await client.workflow
        .getHandle(workflowId)
        .terminate('terminated by the recover CLI test')
        .catch(() => undefined);
    }
  });

  it('--signal sends each decision as the signal of its name, the text as comment (approve) or reason (the others)', async () => {
    const workflowId = `recover-orders-cli-test-signals-${process.pid}-${Date.now()}`;
    const started = await lifeboat(
      ['recover', '--runbook', 'orders', '--to-latest', '--dry-run', '--concurrent', '--workflow-id', workflowId],
      env(),
    );
    const handle = client.workflow.getHandle(workflowId);
    try {
      expect(started.code).toBe(0);
      const sent: string[] = [];
      // abort last: a run that takes it ends, and a closed run takes no more signals.
      for (const decision of ['approve', 'reject', 'retry', 'skip', 'abort']) {
        const text = decision === 'approve' ? ['--comment', 'looks right'] : ['--reason', `why ${decision}`];
        const step = decision === 'approve' || decision === 'reject' ? 'approve-fence' : 'preflight';
        const { code, stdout } = await lifeboat(
          [decision, workflowId, step, '--as', 'alice', ...text, '--signal'],
          env(),
        );
        expect(code).toBe(0);
        sent.push(stdout.split('\n')[0]!);
      }
      expect(sent).toEqual([
        `sent the approve signal for approve-fence by alice to ${workflowId}`,
        `sent the reject signal for approve-fence by alice to ${workflowId}`,
        `sent the retry signal for preflight by alice to ${workflowId}`,
        `sent the skip signal for preflight by alice to ${workflowId}`,
        `sent the abort signal for preflight by alice to ${workflowId}`,
      ]);
      const signals = ((await handle.fetchHistory()).events ?? [])
        .map((e) => e.workflowExecutionSignaledEventAttributes)
        .filter((a) => a != null)
        .map((a) => ({
          name: a.signalName,
          payload: JSON.parse(Buffer.from(a.input!.payloads![0]!.data!).toString('utf8')) as unknown,
        }));
      expect(signals).toEqual([
        { name: 'approve', payload: { step: 'approve-fence', by: 'alice', comment: 'looks right' } },
        { name: 'reject', payload: { step: 'approve-fence', by: 'alice', reason: 'why reject' } },
        { name: 'retry', payload: { step: 'preflight', by: 'alice', reason: 'why retry' } },
        { name: 'skip', payload: { step: 'preflight', by: 'alice', reason: 'why skip' } },
        { name: 'abort', payload: { step: 'preflight', by: 'alice', reason: 'why abort' } },
      ]);
    } finally {
      await handle.terminate('terminated by the recover CLI test').catch(() => undefined);
    }
  });

  it('says so when there is no such workflow', async () => {
    const { code, stderr } = await lifeboat(['status', 'recover-orders-never-started'], env());
    expect(code).toBe(2);
    expect(stderr.split('\n')[0]).toBe(
      `lifeboat: no workflow "recover-orders-never-started" in namespace default at ${temporalAddress()}`,
    );
  });
});
