// What the drill, backup, schedules and checkpoint commands refuse before
// anything reaches Temporal: a cron that is not one (exit 2 naming
// --schedule), a label PostgreSQL cannot store (exit 2 naming --label), a
// schedule named neither by id nor by runbook and kind.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { labelProblem } from '../../src/checkpoint/label';
import type { LifeboatError } from '../../src/errors';
import { parseCron } from '../../src/schedules/cron';
import { scheduleId, scheduleIdFromArgs } from '../../src/schedules/schedules';

const exec = promisify(execFile);
const CLI = path.resolve(__dirname, '../../bin/lifeboat');

async function lifeboat(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // An address nothing listens on: none of these may get as far as Temporal.
    const { stdout, stderr } = await exec(CLI, args, {
      env: { ...process.env, LIFEBOAT_RUNBOOKS_DIR: '/nonexistent', TEMPORAL_ADDRESS: '127.0.0.1:1' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const cronError = (expr: string) => {
  try {
    parseCron(expr);
  } catch (err) {
    return (err as LifeboatError).what;
  }
  return undefined;
};

describe('cron expressions for --schedule', () => {
  it.each([
    '0 3 * * *',
    '*/15 * * * *',
    '30 2 * * SUN',
    '0 0 1,15 * *',
    '0 9-17/2 * JAN-MAR MON-FRI',
    '@daily',
    '@every 6h',
    '  0   3 * *  *  ',
  ])('accepts %j', (expr) => {
    expect(parseCron(expr)).toBe(expr.trim().replace(/\s+/g, ' '));
  });

  it.each([
    ['', '--schedule "" is not a cron expression: it is empty'],
    ['0 3 * *', '--schedule "0 3 * *" is not a cron expression: expected 5 fields, got 4'],
    ['61 * * * *', '--schedule "61 * * * *" is not a cron expression: minute field "61": 61 is outside 0-59'],
    ['0 24 * * *', '--schedule "0 24 * * *" is not a cron expression: hour field "24": 24 is outside 0-23'],
    [
      '0 3 * * FUNDAY',
      '--schedule "0 3 * * FUNDAY" is not a cron expression: day of week field "FUNDAY": "FUNDAY" is not a number or a name',
    ],
    [
      '0 3 10-2 * *',
      '--schedule "0 3 10-2 * *" is not a cron expression: day of month field "10-2": the range 10-2 runs backwards',
    ],
    ['*/0 * * * *', '--schedule "*/0 * * * *" is not a cron expression: minute field "*/0": a step must be at least 1'],
    [
      '@sometimes',
      '--schedule "@sometimes" is not a cron expression: unknown macro @sometimes (known: @yearly @annually @monthly @weekly @daily @midnight @hourly and @every <duration>)',
    ],
  ])('refuses %j, saying which field is wrong', (expr, message) => {
    expect(cronError(expr)).toBe(message);
  });

  it('exits 2 naming --schedule, with examples, for lifeboat drill and lifeboat backup', async () => {
    for (const command of ['drill', 'backup']) {
      const r = await lifeboat(command, '--runbook', 'orders', '--schedule', '0 3 * *');
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        'lifeboat: --schedule "0 3 * *" is not a cron expression: expected 5 fields, got 4\n' +
          "HINT: five fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *' (03:00 every day, UTC), '30 2 * * SUN' (02:30 on Sundays), '*/15 * * * *' (every 15 minutes), '@daily' or '@every 6h'\n" +
          'HINT: times are UTC; quote the expression so the shell leaves the * alone\n',
      );
    }
  });
});

describe('naming a schedule', () => {
  it('takes a runbook and a kind in either order, or the schedule id', () => {
    expect(scheduleId('drill', 'orders')).toBe('lifeboat-drill-orders');
    expect(scheduleIdFromArgs(['orders', 'drill'])).toBe('lifeboat-drill-orders');
    expect(scheduleIdFromArgs(['backup', 'orders'])).toBe('lifeboat-backup-orders');
    expect(scheduleIdFromArgs(['lifeboat-backup-orders'])).toBe('lifeboat-backup-orders');
  });

  it('exits 2 when the kind is neither drill nor backup', async () => {
    const r = await lifeboat('schedules', 'pause', 'orders', 'nightly');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'lifeboat: expected <runbook> <kind> (kind: drill or backup) or a schedule id, got "orders nightly"\n' +
        'HINT: e.g. lifeboat schedules pause orders drill\nHINT: or lifeboat schedules pause lifeboat-drill-orders\nHINT: lifeboat schedules lists them\n',
    );
  });

  it('documents every schedule action in --help', async () => {
    const r = await lifeboat('schedules', '--help');
    expect(r.code).toBe(0);
    for (const a of ['pause', 'unpause', 'trigger', 'delete'])
      expect(r.stdout).toMatch(new RegExp(`^  ${a} \\[options\\] <schedule\\.\\.\\.>`, 'm'));
  });
});

describe('checkpoint labels', () => {
  it('counts bytes, not characters, against the 63 PostgreSQL stores', () => {
    expect(labelProblem('before-migration-0042')).toBeUndefined();
    expect(labelProblem('a'.repeat(63))).toBeUndefined();
    expect(labelProblem('é'.repeat(31))).toBeUndefined();
    expect(labelProblem('é'.repeat(32))).toBe(
      `"${'é'.repeat(32)}" is 64 bytes; PostgreSQL restore point names are at most 63 bytes`,
    );
  });

  it('exits 2 naming --label for an empty or too long label, before reading the runbook', async () => {
    const empty = await lifeboat('checkpoint', '--runbook', 'orders', '--label', '');
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe(
      'lifeboat: --label: expected a restore point name, e.g. "before-migration-0042"\n' +
        'HINT: e.g. lifeboat checkpoint --runbook orders --label before-migration-0042\nHINT: recover to it later with --to-name <label>\n',
    );
    const long = await lifeboat('checkpoint', '--runbook', 'orders', '--label', 'x'.repeat(64));
    expect(long.code).toBe(2);
    expect(long.stderr).toContain(
      `lifeboat: --label: "${'x'.repeat(64)}" is 64 bytes; PostgreSQL restore point names are at most 63 bytes\n`,
    );
    const missing = await lifeboat('checkpoint', '--runbook', 'orders');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^lifeboat: --label: expected a restore point name/);
  });
});
