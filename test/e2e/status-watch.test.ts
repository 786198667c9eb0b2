// `lifeboat status <id> --watch` as an operator sees it: the real binary in a
// pseudo-terminal (tmux), watching a real recovery on a test cluster with an
// s3:// repository. The screen shows the checklist with the replay progress
// bar on its way to the target LSN, then the approval it waits for with the
// commands to give it; with a TTY it is in colour, through a pipe the same
// look has no escape codes.
//
// The bar is observed while replay is HELD: the store is reached through a
// gate (test/harness/faults-s3-gate.ts) that keeps one WAL segment between the
// backup and the target back until the test has seen the bar, so replay
// cannot finish between two looks however fast or slow the machine is.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { decideUpdate, statusQuery } from '../../src/recovery/messages';
import { projectRoot } from '../../src/tools';
import { parseLsn } from '../../src/wal/names';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startS3Gate } from '../harness/faults-s3-gate';
import { backedUpCluster, recoveryWorkers } from '../harness/recovery-cluster';
import { switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { s3Env, temporalAddress } from '../harness/services';

const exec = promisify(execFile);
const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

const ESC = '\x1b[';

describe('lifeboat status --watch', () => {
  it(
    'redraws the checklist in a terminal with the replay progress bar of a real recovery and the approval it then waits for; piped, it has no colour codes',
    { timeout: 600_000 },
    async () => {
      const cluster = await backedUpCluster('watch', cleanups, 's3');
      const { tc, name } = cluster;
      // Four segments of WAL after the backup, one batch of rows each; replay
      // fetches them one by one through archive-get. The third is the one the
      // gate will hold back, so replay stops at its first byte.
      await tc.pg.query(`create table t (id int, pad text)`);
      const segments: Array<{ walfile: string; startLsn: string }> = [];
      for (let b = 0; b < 4; b++) {
        const [seg] = await tc.pg.query<{ walfile: string; startLsn: string }>(
          `select pg_walfile_name(pg_current_wal_insert_lsn()) as walfile, pg_current_wal_insert_lsn()::text as "startLsn"`,
        );
        segments.push(seg!);
        await tc.pg.query(
          `insert into t select g, repeat('x', 200) from generate_series(${b * 1000 + 1}, ${(b + 1) * 1000}) g`,
        );
        if (b < 3) await tc.pg.query(`select pg_switch_wal()`);
      }
      const [{ lsn } = { lsn: '' }] = await tc.pg.query<{ lsn: string }>(`select pg_current_wal_lsn()::text as lsn`);
      await switchAndWaitArchived(tc.pg);
      const heldSegment = segments[2]!;

      // From here on the worker (restore, then the restored copy's archive-get)
      // reaches the store through the gate; the primary keeps archiving directly.
      const gate = await startS3Gate(s3Env().S3_ENDPOINT!);
      cleanups.push(() => gate.stop());
      process.env.S3_ENDPOINT = gate.endpoint;
      gate.holdBackSegment(heldSegment.walfile);

      const { client, taskQueue } = await recoveryWorkers(cluster, cleanups);
      const workflowId = `recover-${name}`;
      const wf = await client.workflow.start('recoverToPointInTime', {
        taskQueue,
        workflowId,
        args: [{ runbook: name, target: { lsn }, incident: 'INC-5', reason: 'watch test' }],
      });

      // The watch, in a terminal of its own (a tmux server on its own socket).
      const socket = `lifeboat-watch-${process.pid}`;
      const tmux = (...args: string[]) => exec('tmux', ['-L', socket, ...args]).then((r) => r.stdout);
      await tmux(
        'new-session',
        '-d',
        '-s',
        'watch',
        '-x',
        '150',
        '-y',
        '60',
        '-e',
        'NO_COLOR=',
        '-e',
        `LIFEBOAT_LOG_LEVEL=WARN`,
      );
      cleanups.push(() => tmux('kill-server'));
      await tmux(
        'send-keys',
        '-t',
        'watch',
        `unset NO_COLOR; ${path.join(projectRoot(), 'bin/lifeboat')} status ${workflowId} --watch --interval 1 --address ${temporalAddress()}; echo "watch exited $?"`,
        'Enter',
      );
      const screen = () => tmux('capture-pane', '-p', '-t', 'watch');

      await waitFor(
        'approve-fence to wait',
        async () => ((await wf.query(statusQuery)).pending?.step === 'approve-fence' ? true : undefined),
        { timeoutMs: 120_000, intervalMs: 250 },
      );
      await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-fence', decision: 'approve', by: 'alice' }] });

      // Replay is held before the held segment for as long as the test needs:
      // the restored copy asks for it and gets no answer until released.
      await waitFor(
        `archive-get to ask for the held segment ${heldSegment.walfile}`,
        async () => (gate.heldRequests() > 0 ? true : undefined),
        { timeoutMs: 300_000, intervalMs: 200 },
      );
      const barWhileHeld = await waitFor(
        `the replay bar while ${heldSegment.walfile} is held back`,
        async () => {
          const s = await screen();
          return /^\s+replaying\s+\[#+-+\]\s+\d{1,2}%\s+at [0-9A-F]+\/[0-9A-F]+ of [0-9A-F]+\/[0-9A-F]+/m.test(s)
            ? s
            : undefined;
        },
        { timeoutMs: 300_000, intervalMs: 200 },
      );
      expect(barWhileHeld).toMatch(
        new RegExp(`^recover ${name} to LSN ${lsn.replace('/', '\\/')} \\(side-by-side\\)$`, 'm'),
      );
      expect(barWhileHeld).toMatch(/^ {2}\[x\] restore-base-backup\s+\d+ s\s+\d+ MiB into /m);
      expect(barWhileHeld).toMatch(/^ {2}\[>\] replay-wal\s+\d+ s\s+Replay WAL to the target and pause$/m);
      const bar = new RegExp(
        `^ {8}replaying {4}\\[#+-+\\] +(\\d+)%  at ([0-9A-F]+/[0-9A-F]+) of ${lsn.replace('/', '\\/')}`,
        'm',
      ).exec(barWhileHeld);
      expect(bar, barWhileHeld).not.toBeNull();
      // Where replay stands: not past the first byte of the segment held back.
      expect(parseLsn(bar![2]!) <= parseLsn(heldSegment.startLsn)).toBe(true);
      expect(Number(bar![1])).toBeGreaterThan(0);
      gate.releaseHeldSegment();

      // Paused at the target: the approval it waits for, with the commands.
      const waiting = await waitFor(
        'approve-promote on the screen',
        async () => {
          const s = await screen();
          return s.includes('Waiting for approval of approve-promote') ? s : undefined;
        },
        { timeoutMs: 300_000, intervalMs: 500 },
      );
      expect(waiting).toMatch(/^ {2}\[\?\] approve-promote\s+\d+ s\s+Approve promotion: needs 1 of alice$/m);
      expect(waiting).toContain('  may decide: alice (1 must approve)');
      expect(waiting).toContain(`  lifeboat approve ${workflowId} approve-promote --as <who> [--comment <text>]`);
      expect(waiting).toMatch(/^ {2}\[x\] replay-wal\s+\d+ s\s+paused at [0-9A-F]+\/[0-9A-F]+/m);
      // In a terminal the checklist is in colour (capture-pane -e keeps the escapes).
      expect(await tmux('capture-pane', '-p', '-e', '-t', 'watch')).toContain(`${ESC}33m`);

      // Piped, the same look has no escape codes at all.
      const piped = await exec(
        path.join(projectRoot(), 'bin/lifeboat'),
        ['status', workflowId, '--address', temporalAddress()],
        { env: { ...process.env, NO_COLOR: '' } },
      );
      expect(piped.stdout).toContain('Waiting for approval of approve-promote');
      expect(piped.stdout).not.toContain('\x1b');

      // Rejected: the watch draws the end and exits 1 (the run did not succeed).
      await wf.executeUpdate(decideUpdate, {
        args: [{ step: 'approve-promote', decision: 'reject', by: 'alice', comment: 'test over' }],
      });
      const end = await waitFor(
        'the watch to end',
        async () => {
          const s = await screen();
          return s.includes('watch exited 1') ? s : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      expect(end).toContain('Closed: FAILED');
      expect(end).toContain('  RECOVERY_REJECTED: recovery rejected at approve-promote by alice: test over');
    },
  );
});
