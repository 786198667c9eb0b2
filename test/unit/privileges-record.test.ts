// How a backup's recorded privileges are judged for a run (src/privileges/
// record.ts): what the restored copy needs against what the role lacked when
// the backup was taken. The records here are what takeBaseBackup writes; the
// integration tests (test/integration/privileges.test.ts) make them for real.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { BackupPrivileges } from '../../src/catalog/backup-meta';
import { needsOf } from '../../src/privileges/needs';
import { copyUses, judgeBackup } from '../../src/privileges/record';
import { Runbook } from '../../src/runbook/schema';
import { ROLE, bankRunbookYaml } from '../harness/bank-primary';

const runbook = Runbook.parse(
  parse(bankRunbookYaml({ port: 5432 }, { repoDir: '/var/lib/lifeboat/repo', stateDir: '/var/lib/lifeboat' })),
);
const all = needsOf(runbook).map((n) => n.key);

function record(over: Partial<BackupPrivileges> = {}): BackupPrivileges {
  return {
    checkedAt: '2026-12-03T12:00:00Z',
    role: ROLE,
    database: 'bank',
    superuser: false,
    checked: all,
    missing: [],
    ...over,
  };
}

const lacking = (key: string, uses: string[]) => ({
  key,
  what: `what ${key}`,
  fix: `GRANT ${key}`,
  database: 'bank',
  uses,
});

describe('judging a backup by the privileges recorded with it', () => {
  it('passes a backup whose role lacked only what the restored copy does not need', () => {
    const j = judgeBackup(
      {
        backupId: 'B1',
        privileges: record({
          missing: [lacking('replication', ['backup']), { ...lacking('member:pg_monitor', []), optional: true }],
        }),
      },
      runbook,
      copyUses('recovery'),
    );
    expect(j).toMatchObject({
      verdict: 'complete',
      missing: [],
      unchecked: [],
      summary: `backup B1: ${ROLE} had every piece a restored copy needs`,
    });
  });

  it('names what the copy needs and the role lacked; a drill also asks for what a recovery needs in its copy', () => {
    const rec = record({
      missing: [
        lacking('smoke-schema', ['drill-copy']),
        lacking('gate-table:ops.system_gate', ['recovery-primary', 'recovery-copy']),
      ],
    });
    expect(judgeBackup({ backupId: 'B1', privileges: rec }, runbook, copyUses('recovery'))).toMatchObject({
      verdict: 'lacking',
      missing: [expect.objectContaining({ key: 'gate-table:ops.system_gate' })],
      detail: `taken when ${ROLE} lacked 1 piece a restored copy needs: what gate-table:ops.system_gate`,
    });
    expect(
      judgeBackup({ backupId: 'B1', privileges: rec }, runbook, copyUses('drill')).missing.map((m) => m.key),
    ).toEqual(['gate-table:ops.system_gate', 'smoke-schema']);
  });

  it("says which needs of today's runbook the record did not check (an invariant added since), without refusing", () => {
    const j = judgeBackup(
      { backupId: 'B1', privileges: record({ checked: all.filter((k) => k !== 'invariant:no debit over its limit') }) },
      runbook,
      copyUses('recovery'),
    );
    expect(j.verdict).toBe('complete');
    expect(j.unchecked).toEqual(['SELECT on the tables invariant "no debit over its limit" reads in database bank']);
    expect(j.summary).toContain('except ones not checked then (added to the runbook since)');
  });

  it('knows nothing from a backup without a record, one whose check failed, or one recorded for another role', () => {
    expect(judgeBackup({ backupId: 'B0' }, runbook, copyUses('recovery'))).toMatchObject({
      verdict: 'unrecorded',
      summary:
        "backup B0: no record of the role's privileges (taken before Lifeboat recorded them): a copy restored from it may lack a grant made since",
    });
    expect(
      judgeBackup(
        { backupId: 'B1', privileges: record({ checked: [], error: 'connection refused' }) },
        runbook,
        copyUses('recovery'),
      ).verdict,
    ).toBe('unrecorded');
    const other = judgeBackup(
      { backupId: 'B2', privileges: record({ role: 'lifeboat' }) },
      runbook,
      copyUses('recovery'),
    );
    expect(other).toMatchObject({
      verdict: 'unrecorded',
      detail: `its record is of role lifeboat in database bank, not of ${ROLE} in bank: it is not known whether a copy restored from it grants ${ROLE} what Lifeboat needs there`,
    });
  });

  it('trusts a role that was a superuser when the backup was taken', () => {
    expect(
      judgeBackup({ backupId: 'B1', privileges: record({ superuser: true, checked: all }) }, runbook, copyUses('drill'))
        .verdict,
    ).toBe('complete');
  });
});
