// The README's "Monitoring with Prometheus" section against the exporter's
// catalog (src/metrics/catalog.ts): an alert rule on a metric that is not
// written never fires, and nothing says so; a metric the table leaves out is
// one nobody alerts on.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { METRIC_NAMES } from '../../src/metrics/catalog';
import { projectRoot, toolsDir } from '../../src/tools';

const readme = readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
const section = (() => {
  const start = readme.indexOf('\n## Monitoring with Prometheus\n');
  expect(start, 'README section "Monitoring with Prometheus"').toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
})();

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function rulesBlock(): string {
  const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(blocks).toHaveLength(1);
  return blocks[0]!;
}

function alertRules(): Rule[] {
  const doc = YAML.parse(rulesBlock()) as { groups: Array<{ name: string; rules: Rule[] }> };
  return doc.groups.flatMap((g) => g.rules);
}

const namesIn = (text: string) => [...new Set(text.match(/\blifeboat_[a-z0-9_]+\b/g) ?? [])];

describe('README: Monitoring with Prometheus', () => {
  it('has alert rules in Prometheus rule format that name only metrics the exporter writes', () => {
    const rules = alertRules();
    expect(rules.length).toBeGreaterThan(0);
    for (const r of rules) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(typeof r.expr, r.alert).toBe('string');
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      const used = namesIn(r.expr);
      expect(used.length, `${r.alert} uses no lifeboat metric`).toBeGreaterThan(0);
      expect(
        used.filter((n) => !(METRIC_NAMES as string[]).includes(n)),
        r.alert,
      ).toEqual([]);
    }
  });

  it("alerts on each of the seeds' list: archive failures, latency beyond the RPO, WAL directory growth, backup age and size trend, drill results, and a person awaited", () => {
    const exprs = alertRules().map((r) => r.expr);
    const some = (re: RegExp) => exprs.some((e) => re.test(e));
    expect(some(/lifeboat_archive_failed_total/)).toBe(true);
    expect(some(/lifeboat_archive_lag_seconds > lifeboat_rpo_objective_seconds/)).toBe(true);
    expect(some(/lifeboat_wal_directory_bytes .*offset/)).toBe(true);
    expect(some(/lifeboat_backup_newest_age_seconds/)).toBe(true);
    expect(some(/lifeboat_backup_newest_size_bytes .*offset 7d/)).toBe(true);
    expect(some(/lifeboat_drill_last_success == 0/)).toBe(true);
    expect(some(/lifeboat_drill_last_rto_seconds > lifeboat_rto_objective_seconds/)).toBe(true);
    expect(some(/lifeboat_recovery_waiting_seconds/)).toBe(true);
  });

  it('names every metric the exporter writes, and no other', () => {
    const table = section.split('\n').filter((l) => l.startsWith('| `lifeboat_'));
    const documented = namesIn(table.map((l) => l.split(' | ')[0]).join(' '));
    expect(documented.sort()).toEqual([...METRIC_NAMES].sort());
    expect(namesIn(section).filter((n) => !(METRIC_NAMES as string[]).includes(n))).toEqual([]);
  });

  it('is a rule file promtool accepts, and each alert fires on the series it is meant for (promtool test rules)', async () => {
    const promtool = process.env.LIFEBOAT_PROMTOOL_BIN ?? path.join(toolsDir(), 'promtool');
    expect(existsSync(promtool), `${promtool}: run bash scripts/setup.sh`).toBe(true);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-rules-'));
    try {
      writeFileSync(path.join(dir, 'rules.yml'), rulesBlock());
      copyFileSync(path.join(__dirname, 'metrics-alert-rules.promtool.yml'), path.join(dir, 'tests.yml'));
      const run = promisify(execFile);
      expect((await run(promtool, ['check', 'rules', 'rules.yml'], { cwd: dir })).stdout).toContain(
        `SUCCESS: ${alertRules().length} rules found`,
      );
      // Every rule is exercised: an alert nobody has seen fire is a guess.
      const tested = new Set(
        [...readFileSync(path.join(dir, 'tests.yml'), 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]),
      );
      expect(
        alertRules()
          .map((r) => r.alert)
          .filter((a) => !tested.has(a)),
      ).toEqual([]);
      const result = await run(promtool, ['test', 'rules', 'tests.yml'], { cwd: dir }).catch(
        (err: { stdout?: string; stderr?: string }) => err,
      );
      expect(`${result.stdout ?? ''}${result.stderr ?? ''}`).toContain('SUCCESS');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
