// The rules of backups and expiry on a pgBackRest runbook that need no
// pgBackRest (backup-expire-pgbackrest.test.ts runs them against 2.45):
// which --type each engine takes, which runbook settings expiry there
// refuses, and which backups expire's dry-run lines name.
import { describe, expect, it } from 'vitest';
import { requireBackupType } from '../../src/backup/engine-backup';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { expiredInLines } from '../../src/engine/pgbackrest/output';
import { isLifeboatError } from '../../src/errors';
import { requireEngineRetention } from '../../src/retention/engine-expiry';
import { validateRunbookText } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';

const ENGINE = 'engine: { kind: pgbackrest, stanza: main, configPath: /etc/pgbackrest/lb.conf }\n';

function runbook(extra: string, opts: { retainFull?: boolean } = {}): Runbook {
  const demo = demoRunbookYaml({
    name: 'orders',
    pgPort: 5432,
    pgUser: 'postgres',
    database: 'postgres',
    repoUrl: 'file:///tmp/lb-repo',
    host: 'db1',
    stateDir: '/tmp/lb-state',
    restorePort: 5433,
    drillPort: 5434,
  });
  const yaml = opts.retainFull ? demo : demo.replace(/, retainFull: \d+/, '');
  const r = validateRunbookText(`${yaml}${extra}`, 'orders.yaml');
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.runbook;
}

function refusal(fn: () => unknown): { code: string; what: string; hints: readonly string[] } {
  try {
    fn();
  } catch (err) {
    if (isLifeboatError(err)) return { code: err.code, what: err.what, hints: err.hints };
    throw err;
  }
  throw new Error('not refused');
}

describe('requireBackupType', () => {
  it('takes full, diff and incr on pgBackRest, full when left out', () => {
    const rb = runbook(ENGINE);
    expect(['full', 'diff', 'incr', undefined].map((t) => requireBackupType(rb, t))).toEqual([
      'full',
      'diff',
      'incr',
      'full',
    ]);
  });

  it("refuses diff and incr on Lifeboat's own engine, and a type that is none", () => {
    const own = runbook('');
    expect(requireBackupType(own, 'full')).toBe('full');
    const r = refusal(() => requireBackupType(own, 'diff'));
    expect([r.code, r.what]).toEqual([
      'INPUT_INVALID',
      "--type diff: runbook orders uses Lifeboat's own engine, which takes full base backups only (pg_basebackup)",
    ]);
    expect(r.hints[0]).toBe('nothing was started');
    expect(refusal(() => requireBackupType(runbook(ENGINE), 'FULL')).what).toBe(
      '--type FULL: expected full, diff or incr',
    );
  });
});

describe('requireEngineRetention', () => {
  it("lets a pgBackRest runbook without retention settings through, and never judges Lifeboat's own", () => {
    expect(requireEngineRetention(runbook(ENGINE))).toBeUndefined();
    expect(requireEngineRetention(runbook('', { retainFull: true }), 3)).toBeUndefined();
  });

  it('refuses retention:, backup.retainFull and --keep on pgBackRest, naming each', () => {
    const tiers = refusal(() =>
      requireEngineRetention(runbook(`retention: { full: { daily: 7 }, wal: 7d }\n${ENGINE}`)),
    );
    expect([tiers.code, tiers.what]).toEqual([
      'RUNBOOK_INVALID',
      "runbook orders sets retention and engine pgbackrest (stanza main): pgBackRest's own retention decides what expires, not the runbook's",
    ]);
    expect(tiers.hints).toEqual([
      'nothing was expired',
      'remove retention from the runbook; set repo1-retention-full (and -diff, -archive) in /etc/pgbackrest/lb.conf instead',
    ]);
    expect(refusal(() => requireEngineRetention(runbook(ENGINE, { retainFull: true }))).what).toMatch(
      /^runbook orders sets backup\.retainFull and engine pgbackrest/,
    );
    const keep = refusal(() => requireEngineRetention(runbook(ENGINE), 2));
    expect([keep.code, keep.what]).toEqual([
      'INPUT_INVALID',
      '--keep 2: runbook orders uses engine pgbackrest (stanza main), whose own retention decides what expires',
    ]);
  });
});

describe('expiredInLines', () => {
  // As pgBackRest 2.45 prints them (INFO level, the prefix stripped by the engine).
  const lines = [
    '[DRY-RUN] repo1: expire full backup set 20261204-123148F, 20261204-123148F_20261204-123152I',
    '[DRY-RUN] repo1: remove expired backup 20261204-123148F_20261204-123152I',
    '[DRY-RUN] repo1: remove expired backup 20261204-123148F',
    '[DRY-RUN] repo1: 15-1 remove archive, start = 000000010000000000000001, stop = 000000010000000000000009',
  ];
  it('names the backups of the expire line that pgbackrest info listed, in its order', () => {
    expect(
      expiredInLines(lines, ['20261204-123148F', '20261204-123148F_20261204-123152I', '20261204-123201F']),
    ).toEqual(['20261204-123148F', '20261204-123148F_20261204-123152I']);
  });

  it('names none when only WAL goes, or nothing', () => {
    expect(expiredInLines(lines.slice(3), ['20261204-123148F'])).toEqual([]);
    expect(expiredInLines([], ['20261204-123148F'])).toEqual([]);
  });
});
