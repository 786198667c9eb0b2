// The primary overlay (src/catalog/primary.ts): applied while the runbook
// still names the server it replaced, ignored once the runbook names another,
// nothing to say once the runbook names the new primary itself.
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  applyPrimaryOverlay,
  parsePrimaryOverlay,
  restoreOverPrimary,
  type PrimaryOverlay,
} from '../../src/catalog/primary';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { Runbook } from '../../src/runbook/schema';

const runbook = (port: number) =>
  Runbook.parse(
    parseYaml(
      demoRunbookYaml({
        name: 'bank',
        pgPort: port,
        repoUrl: 'file:///nonexistent/repo',
        host: 'db1',
        stateDir: '/tmp/x',
        restorePort: 5544,
        drillPort: 5545,
      }),
    ),
  );
const overlay: PrimaryOverlay = {
  cluster: 'bank',
  runbook: 'bank',
  host: '127.0.0.1',
  port: 5544,
  replaced: { host: '127.0.0.1', port: 5432 },
  timeline: 2,
  promotedAt: '2026-12-03T13:00:05Z',
  since: '2026-12-03T13:00:06Z',
  workflowId: 'recover-bank-1',
  runId: 'r1',
};

describe('the primary overlay', () => {
  it('re-points cluster.primary (host and port only) while the runbook names the replaced server, and says so in one line', () => {
    const rb = runbook(5432);
    const o = applyPrimaryOverlay(rb, overlay);
    expect(o.applied).toBe(true);
    expect(o.runbook.cluster.primary).toEqual({ ...rb.cluster.primary, host: '127.0.0.1', port: 5544 });
    expect(o.runbook.restore).toEqual(rb.restore);
    expect(rb.cluster.primary.port).toBe(5432); // the loaded runbook is not changed
    expect(o.note).toBe(
      'primary re-pointed to 127.0.0.1:5544 (timeline 2) by recovery recover-bank-1 at 2026-12-03T13:00:05Z; ' +
        'edit cluster.primary in runbook bank to make it permanent (and move restore.dataDir/restore.port: the new primary runs there)',
    );
  });

  it('is silent once the runbook names the new primary, and ignored (saying so) when it names a third server', () => {
    const same = applyPrimaryOverlay(runbook(5544), overlay);
    expect(same.applied).toBe(false);
    expect(same.note).toBeUndefined();
    const third = applyPrimaryOverlay(runbook(6000), overlay);
    expect(third.applied).toBe(false);
    expect(third.runbook.cluster.primary.port).toBe(6000);
    expect(third.note).toBe(
      'primary overlay ignored: recovery recover-bank-1 at 2026-12-03T13:00:05Z re-pointed the primary from 127.0.0.1:5432 to 127.0.0.1:5544, but the runbook now names 127.0.0.1:6000, so the runbook wins',
    );
    expect(applyPrimaryOverlay(runbook(5432), undefined)).toMatchObject({ applied: false });
  });

  it('refuses an overlay it cannot trust, naming the field', () => {
    expect(() => parsePrimaryOverlay(JSON.stringify({ ...overlay, port: 'x' }), 's3://b/bank/primary.json')).toThrow(
      'primary overlay s3://b/bank/primary.json cannot be used: port must be a port number',
    );
    expect(() => parsePrimaryOverlay('{', 'f')).toThrow(/^primary overlay f cannot be used: not valid JSON/);
    expect(parsePrimaryOverlay(JSON.stringify(overlay), 'f')).toEqual(overlay);
  });

  it('refuses a side-by-side restore into the restore site the re-pointed primary now runs in, with the runbook edit that fixes it', () => {
    const err = restoreOverPrimary(applyPrimaryOverlay(runbook(5432), overlay));
    expect(err?.code).toBe('RUNBOOK_INVALID');
    expect(err?.message).toBe(
      "runbook bank would restore side by side into the cluster's primary: restore is 127.0.0.1:5544 (/tmp/x/recovery), " +
        'where recovery recover-bank-1 promoted the copy that is the primary since 2026-12-03T13:00:05Z (timeline 2)\n' +
        'HINT: edit runbook bank: cluster.primary to { host: 127.0.0.1, port: 5544 }, and restore.dataDir and restore.port to a free directory and port for the next copy\n' +
        "HINT: or recover in place (mode: in-place), which moves the primary's directory aside after the fence\n" +
        'HINT: nothing was touched: no gate, no traffic, no data directory',
    );
    // Once the runbook names the new primary, the overlay no longer applies: the site check of preflight judges the directory as for any server.
    expect(restoreOverPrimary(applyPrimaryOverlay(runbook(5544), overlay))).toBeUndefined();
    expect(restoreOverPrimary(applyPrimaryOverlay(runbook(5432), { ...overlay, host: '10.0.0.9' }))).toBeUndefined();
  });
});

describe('an overlay that cannot be read', () => {
  it('leaves the runbook primary in place with a note: fencing must not wait for a repository that is down', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { loadRunbookWithPrimary } = await import('../../src/catalog/primary');
    const dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-overlay-'));
    const saved = process.env.LIFEBOAT_RUNBOOKS_DIR;
    try {
      writeFileSync(
        path.join(dir, 'bank.yaml'),
        demoRunbookYaml({
          name: 'bank',
          pgPort: 5432,
          repoUrl: 'file:///nonexistent/repo',
          host: 'db1',
          stateDir: '/tmp/x',
          restorePort: 5544,
          drillPort: 5545,
        }),
      );
      process.env.LIFEBOAT_RUNBOOKS_DIR = dir;
      const o = await loadRunbookWithPrimary('bank');
      expect(o.applied).toBe(false);
      expect(o.runbook.cluster.primary.port).toBe(5432);
      expect(o.note).toMatch(
        /^primary overlay not read \(.*\/nonexistent\/repo.*\): cluster\.primary used as the runbook names it$/,
      );
    } finally {
      if (saved === undefined) delete process.env.LIFEBOAT_RUNBOOKS_DIR;
      else process.env.LIFEBOAT_RUNBOOKS_DIR = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
