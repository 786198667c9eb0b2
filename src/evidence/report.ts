// The audit report: one self-contained HTML page (no script, no external
// style, font or image) that shows whether recovery works and how fast: RTO
// and RPO of every drill and recovery over time against the runbook's
// objectives, the table of runs, and who approved what in the last recovery.
// Everything taken from evidence records is escaped (./html.ts).
import type { Evidence } from '../recovery/contract';
import { chartSvg, type ChartPoint } from './chart';
import { seconds, targetText } from './figures';
import { escapeHtml as h } from './html';

export interface ReportInput {
  runbook: string;
  cluster: string;
  repository: string;
  /** The runbook's objectives now (each record also carries those it was judged by). */
  objectives?: { rpoSeconds: number; rtoSeconds: number };
  records: readonly Evidence[];
  unreadable?: ReadonlyArray<{ key: string; problem: string }>;
  generatedAt: Date;
}

const STYLE = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #24292f; margin: 24px auto; max-width: 1100px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
.meta { color: #57606a; margin: 0 0 12px; } .summary { display: flex; gap: 12px; flex-wrap: wrap; margin: 12px 0; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; min-width: 150px; } .card b { display: block; font-size: 18px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; } th, td { border-bottom: 1px solid #d8dee4; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; } td.when { white-space: nowrap; } code { font-size: 12px; }
.passed { color: #1a7f37; font-weight: 600; } .failed, .aborted, .rejected, .missed { color: #cf222e; font-weight: 600; }
.chart { display: block; margin: 8px 0 16px; border: 1px solid #d0d7de; border-radius: 6px; } .warn { color: #9a6700; }
`;

export function renderReport(input: ReportInput): string {
  const { records } = input;
  const drills = records.filter((r) => r.kind === 'drill');
  const recoveries = records.filter((r) => r.kind === 'recovery');
  const lastDrill = drills[drills.length - 1];
  const lastRecovery = recoveries[recoveries.length - 1];
  const objectives = input.objectives ?? lastDrill?.objectives ?? lastRecovery?.objectives;
  const point = (r: Evidence, value: number | undefined): ChartPoint[] =>
    value === undefined || !Number.isFinite(value)
      ? []
      : [
          {
            at: Date.parse(r.startedAt),
            value,
            kind: r.kind,
            passed: r.validationStatus === 'passed',
            label: `${r.kind} ${r.startedAt}: ${seconds(value)} (${r.validationStatus})`,
          },
        ];

  const body: string[] = [];
  body.push(`<h1>Recovery evidence: runbook ${h(input.runbook)}</h1>`);
  body.push(
    `<p class="meta">cluster <code>${h(input.cluster)}</code> in <code>${h(input.repository)}</code>; generated ${h(iso(input.generatedAt))} from ${records.length} evidence record${records.length === 1 ? '' : 's'}</p>`,
  );
  body.push('<div class="summary">');
  body.push(
    card('Objectives', objectives ? `RTO ${objectives.rtoSeconds} s, RPO ${objectives.rpoSeconds} s` : 'not recorded'),
  );
  body.push(
    card('Drills', `${drills.length} (${drills.filter((d) => d.validationStatus === 'passed').length} passed)`),
  );
  body.push(
    card(
      'Last drill',
      lastDrill
        ? `${iso(lastDrill.startedAt)}: <span class="${h(lastDrill.validationStatus)}">${h(lastDrill.validationStatus)}</span>`
        : 'none',
      true,
    ),
  );
  body.push(card('Recoveries', String(recoveries.length)));
  body.push('</div>');

  body.push('<h2>RTO and RPO over time</h2>');
  body.push(
    chartSvg({
      id: 'chart-rto',
      title: 'RTO observed (seconds from start to promotion)',
      unit: 's',
      objective: objectives?.rtoSeconds,
      points: records.flatMap((r) => point(r, r.rtoObservedSeconds)),
    }),
  );
  body.push(
    chartSvg({
      id: 'chart-rpo',
      title: 'RPO observed (seconds of changes lost at the target)',
      unit: 's',
      objective: objectives?.rpoSeconds,
      points: records.flatMap((r) => point(r, r.rpoObservedSeconds)),
    }),
  );

  body.push('<h2>Drills and recoveries</h2>');
  if (records.length === 0) body.push('<p>No recovery or drill has been recorded for this cluster yet.</p>');
  else {
    body.push(
      '<table id="runs"><thead><tr><th>Started (UTC)</th><th>Kind</th><th>Target</th><th>Backup</th><th>RTO</th><th>RPO</th><th>WAL segments</th><th>Invariants</th><th>Verdict</th><th>Incident / reason</th><th>Run id</th></tr></thead><tbody>',
    );
    for (const r of [...records].reverse()) {
      const failedInv = r.invariants.filter((i) => !i.passed).length;
      body.push(
        '<tr>' +
          `<td class="when">${h(iso(r.startedAt))}</td><td>${h(r.kind)}${r.dryRun ? ' (dry run)' : ''}</td><td>${h(targetText(r.target))}</td><td><code>${h(r.backupId ?? '-')}</code></td>` +
          `<td class="num ${met(r.objectives?.rtoMet)}">${h(seconds(r.rtoObservedSeconds))}</td><td class="num ${met(r.objectives?.rpoMet)}">${h(seconds(r.rpoObservedSeconds))}</td>` +
          `<td class="num">${h(r.walSegmentsReplayed ?? '-')}</td><td>${r.invariants.length - failedInv} passed${failedInv ? `, <span class="failed">${failedInv} failed</span>` : ''}</td>` +
          `<td class="${h(r.validationStatus)}">${h(r.validationStatus)}</td><td>${h([r.incident, r.reason].filter(Boolean).join(': ') || '-')}</td><td><code>${h(r.runId)}</code></td>` +
          '</tr>',
      );
    }
    body.push('</tbody></table>');
  }

  body.push('<h2>Approvals of the last recovery</h2>');
  if (!lastRecovery) body.push('<p>No recovery recorded.</p>');
  else {
    body.push(
      `<p class="meta">recovery <code>${h(lastRecovery.workflowId ?? lastRecovery.runId)}</code> started ${h(iso(lastRecovery.startedAt))}` +
        `${lastRecovery.incident ? `, incident ${h(lastRecovery.incident)}` : ''}, to ${h(targetText(lastRecovery.target))}: <span class="${h(lastRecovery.validationStatus)}">${h(lastRecovery.validationStatus)}</span></p>`,
    );
    if (lastRecovery.approvals.length === 0) body.push('<p>No approval was recorded.</p>');
    else {
      body.push(
        '<table id="approvals"><thead><tr><th>Who</th><th>Step</th><th>Decision</th><th>When (UTC)</th><th>Comment</th></tr></thead><tbody>',
      );
      for (const a of lastRecovery.approvals) {
        body.push(
          `<tr><td>${h(a.by)}</td><td>${h(a.step)}</td><td>${h(a.decision)}</td><td class="when">${h(iso(a.at))}</td><td>${h(a.comment ?? '')}</td></tr>`,
        );
      }
      body.push('</tbody></table>');
    }
    if (lastRecovery.invariantOverride) {
      body.push(
        `<p class="warn">Promoted although an invariant failed: override by ${h(lastRecovery.invariantOverride.by)}: ${h(lastRecovery.invariantOverride.reason)}</p>`,
      );
    }
  }
  for (const u of input.unreadable ?? [])
    body.push(`<p class="warn">Not a readable evidence record: <code>${h(u.key)}</code>: ${h(u.problem)}</p>`);

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lifeboat recovery evidence: ${h(input.runbook)}</title>
<style>${STYLE}</style></head>
<body>
${body.join('\n')}
</body></html>
`;
}

function card(title: string, html: string, raw = false): string {
  return `<div class="card">${h(title)}<b>${raw ? html : h(html)}</b></div>`;
}

function met(v: boolean | undefined): string {
  return v === false ? 'missed' : '';
}

function iso(t: Date | string): string {
  const d = typeof t === 'string' ? new Date(t) : t;
  return Number.isNaN(d.getTime())
    ? String(t)
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}
