// The evidence history and the audit report, from records as the recovery
// and the drill write them: damaged records are named, not dropped; every
// string from a record is text in the page, never markup; the chart has one
// point per run that measured the figure and a line per objective.
import { describe, expect, it } from 'vitest';
import { checkRecord } from '../../src/evidence/list';
import { renderReport } from '../../src/evidence/report';
import type { Evidence } from '../../src/recovery/contract';

function record(over: Partial<Evidence>): Evidence {
  return {
    runId: 'run-1',
    workflowId: 'drill-orders-20261101T030000Z',
    kind: 'drill',
    runbook: 'orders',
    cluster: 'orders',
    backupId: '20261101T020000Z',
    target: { time: '2026-11-01T01:00:00Z' },
    startedAt: '2026-11-01T03:00:00.000Z',
    finishedAt: '2026-11-01T03:01:00.000Z',
    rtoObservedSeconds: 42.5,
    rpoObservedSeconds: 3,
    walSegmentsReplayed: 7,
    invariants: [{ name: 'no negative amounts', passed: true, value: '0' }],
    approvals: [],
    steps: [],
    objectives: { rpoSeconds: 300, rtoSeconds: 2700, rpoMet: true, rtoMet: true },
    validationStatus: 'passed',
    notes: [],
    ...over,
  };
}

describe('evidence records', () => {
  it('names what makes a record unreadable', () => {
    expect(checkRecord([])).toBe('kind is undefined, expected "recovery", "drill" or "repair"');
    expect(checkRecord({ ...record({}), kind: 'backup' })).toBe(
      'kind is "backup", expected "recovery", "drill" or "repair"',
    );
    expect(checkRecord({ ...record({}), startedAt: 'yesterday' })).toBe('startedAt "yesterday" is not a time');
    const { runId: _runId, ...noRun } = record({});
    expect(checkRecord(noRun)).toBe('runId is missing or not a string');
  });

  it('reads a record without its lists as one with empty lists', () => {
    const { invariants: _i, approvals: _a, steps: _s, notes: _n, ...bare } = record({});
    const r = checkRecord(bare);
    expect(typeof r).toBe('object');
    expect(r).toMatchObject({ invariants: [], approvals: [], steps: [], notes: [] });
  });
});

describe('the audit report', () => {
  const hostile = '<script>window.pwned = 1</script><img src=x onerror=alert(1)>';
  const records = [
    record({}),
    record({
      runId: 'run-2',
      startedAt: '2026-11-08T03:00:00.000Z',
      rtoObservedSeconds: 55,
      rpoObservedSeconds: 12,
      validationStatus: 'failed',
    }),
    record({
      runId: 'run-3',
      kind: 'recovery',
      workflowId: 'recover-orders-x',
      startedAt: '2026-11-10T14:40:00.000Z',
      incident: `INC-1234 ${hostile}`,
      target: { name: 'before-migration-0042' },
      approvals: [
        { step: 'approve-fence', by: 'alice', at: '2026-11-10T14:41:00.000Z', decision: 'approve' },
        {
          step: 'approve-promote',
          by: `bob ${hostile}`,
          at: '2026-11-10T14:50:00.000Z',
          decision: 'approve',
          comment: `rows back "ok" & ${hostile}`,
        },
      ],
    }),
  ];
  const html = renderReport({
    runbook: 'orders',
    cluster: 'orders',
    repository: 's3://bucket/orders',
    objectives: { rpoSeconds: 300, rtoSeconds: 2700 },
    records,
    generatedAt: new Date('2026-11-21T22:00:00Z'),
  });

  it('is one page with no script, no external resource, and a policy that forbids both', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href)=["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).toContain(
      `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
    );
  });

  it('escapes everything that comes from a record', () => {
    const escaped = '&lt;script&gt;window.pwned = 1&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;';
    expect(html).toContain(
      `<td>bob ${escaped}</td><td>approve-promote</td><td>approve</td><td class="when">2026-11-10 14:50:00Z</td><td>rows back &quot;ok&quot; &amp; ${escaped}</td>`,
    );
    expect(html).toContain(`<td>INC-1234 ${escaped}</td>`);
    expect(html).not.toContain('<img');
  });

  it('draws a point per run on each chart, and the objectives as dashed lines', () => {
    const rto = /<svg id="chart-rto"[\s\S]*?<\/svg>/.exec(html)![0];
    const rpo = /<svg id="chart-rpo"[\s\S]*?<\/svg>/.exec(html)![0];
    expect(rto.match(/class="point"/g)).toHaveLength(3);
    expect(rpo.match(/class="point"/g)).toHaveLength(3);
    expect(rto).toContain('>objective 2700 s</text>');
    expect(rpo).toContain('>objective 300 s</text>');
    expect(rto).toContain('<title>drill 2026-11-08T03:00:00.000Z: 55.0 s (failed)</title>');
  });

  it("lists the runs newest first and the last recovery's approvals with who, step, when and comment", () => {
    const runs = /<table id="runs">[\s\S]*?<\/table>/.exec(html)![0];
    expect([...runs.matchAll(/<code>(run-\d)<\/code>/g)].map((m) => m[1])).toEqual(['run-3', 'run-2', 'run-1']);
    expect(runs).toContain('<td>restore point &quot;before-migration-0042&quot;</td>');
    expect(runs).toContain('<td class="failed">failed</td>');
    const approvals = /<table id="approvals">[\s\S]*?<\/table>/.exec(html)![0];
    expect(approvals).toContain(
      '<tr><th>Who</th><th>Step</th><th>Decision</th><th>When (UTC)</th><th>Comment</th></tr>',
    );
    expect(approvals).toContain(
      '<tr><td>alice</td><td>approve-fence</td><td>approve</td><td class="when">2026-11-10 14:41:00Z</td><td></td></tr>',
    );
  });

  it('says so when nothing has been recorded', () => {
    const empty = renderReport({
      runbook: 'orders',
      cluster: 'orders',
      repository: 'file:///r',
      records: [],
      generatedAt: new Date('2026-11-21T22:00:00Z'),
    });
    expect(empty).toContain('<p>No recovery or drill has been recorded for this cluster yet.</p>');
    expect(empty).toContain('no run recorded this figure yet');
    expect(empty).toContain('<p>No recovery recorded.</p>');
  });
});
