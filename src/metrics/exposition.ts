// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): per metric
// a HELP and a TYPE line, then its samples; label values escape backslash,
// double quote and newline, HELP text backslash and newline.
import { METRICS, METRIC_NAMES, type MetricName } from './catalog';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface Sample {
  name: MetricName;
  labels: Record<string, string>;
  value: number;
}

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Metrics in catalog order, each with its samples in the order given; a metric without samples is left out. */
export function renderExposition(samples: readonly Sample[]): string {
  const byName = new Map<MetricName, Sample[]>();
  for (const s of samples) {
    const list = byName.get(s.name) ?? [];
    list.push(s);
    byName.set(s.name, list);
  }
  const out: string[] = [];
  for (const name of METRIC_NAMES) {
    const list = byName.get(name);
    if (!list) continue;
    out.push(`# HELP ${name} ${escapeHelp(METRICS[name].help)}`, `# TYPE ${name} ${METRICS[name].type}`);
    for (const s of list) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
      out.push(`${name}${labels.length > 0 ? `{${labels.join(',')}}` : ''} ${formatValue(s.value)}`);
    }
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
