// The README's "Monitoring with Prometheus" section against the exporter's
// catalog (src/metrics/catalog.ts): an alert rule on a metric that is not
// written never fires, and nothing says so; a metric the table leaves out is
// one nobody alerts on.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { METRIC_NAMES } from '../../src/metrics/catalog';
import { projectRoot } from '../../src/tools';

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

function alertRules(): Rule[] {
  const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  expect(blocks).toHaveLength(1);
  const doc = YAML.parse(blocks[0]!) as { groups: Array<{ name: string; rules: Rule[] }> };
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
      expect(used.filter((n) => !(METRIC_NAMES as string[]).includes(n)), r.alert).toEqual([]);
    }
  });

  it("alerts on each of the seeds' list: archive failures, latency beyond the RPO, WAL directory growth, backup age and size trend, drill results, and a person awaited", () => {
    const exprs = alertRules().map((r) => r.expr);
    const some = (re: RegExp) => exprs.some((e) => re.test(e));
    expect(some(/lifeboat_archive_failed_total/)).toBe(true);
    expect(some(/lifeboat_archive_lag_seconds > on\(runbook, cluster\) lifeboat_rpo_objective_seconds/)).toBe(true);
    expect(some(/lifeboat_wal_directory_bytes .*offset/)).toBe(true);
    expect(some(/lifeboat_backup_newest_age_seconds/)).toBe(true);
    expect(some(/lifeboat_backup_newest_size_bytes .*offset 7d/)).toBe(true);
    expect(some(/lifeboat_drill_last_success == 0/)).toBe(true);
    expect(some(/lifeboat_drill_last_rto_seconds > on\(runbook, cluster\) lifeboat_rto_objective_seconds/)).toBe(true);
    expect(some(/lifeboat_recovery_waiting_seconds/)).toBe(true);
  });

  it('names every metric the exporter writes, and no other', () => {
    const table = section.split('\n').filter((l) => l.startsWith('| `lifeboat_'));
    const documented = namesIn(table.map((l) => l.split(' | ')[0]).join(' '));
    expect(documented.sort()).toEqual([...METRIC_NAMES].sort());
    expect(namesIn(section).filter((n) => !(METRIC_NAMES as string[]).includes(n))).toEqual([]);
  });
});
