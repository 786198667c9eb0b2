// The report's chart: one inline SVG panel per figure (RTO, RPO), each run a
// point at its start time, the runbook's objective a dashed line. Plain SVG
// with no script, so the page stays one self-contained file that opens
// anywhere, an auditor's laptop included.
import type { Evidence } from '../recovery/contract';
import { escapeHtml } from './html';

export interface ChartPoint {
  at: number;
  value: number;
  kind: Evidence['kind'];
  passed: boolean;
  label: string;
}

const W = 860;
const H = 240;
const M = { left: 64, right: 150, top: 28, bottom: 36 };
const COLORS = {
  drill: '#1f6feb',
  recovery: '#8250df',
  repair: '#1a7f37',
  failed: '#cf222e',
  objective: '#d1242f',
  grid: '#d0d7de',
  text: '#24292f',
};

/** One panel: the figure of every run over time against its objective. */
export function chartSvg(opts: {
  title: string;
  unit: string;
  objective?: number;
  points: readonly ChartPoint[];
  id: string;
}): string {
  const { points, objective } = opts;
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const parts: string[] = [];
  parts.push(
    `<text x="${M.left}" y="18" font-size="14" font-weight="600" fill="${COLORS.text}">${escapeHtml(opts.title)}</text>`,
  );
  if (points.length === 0) {
    parts.push(
      `<text x="${M.left}" y="${M.top + plotH / 2}" font-size="13" fill="#57606a">no run recorded this figure yet</text>`,
    );
    return wrap(opts.id, opts.title, parts);
  }
  const times = points.map((p) => p.at);
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  // A single run (or runs in the same second) still needs a visible x range.
  if (t1 - t0 < 60_000) {
    t0 -= 60_000;
    t1 += 60_000;
  }
  // A margin, so the first and last markers are not cut by the axis or the legend.
  const pad = (t1 - t0) * 0.04;
  t0 -= pad;
  t1 += pad;
  const yMax = niceMax(Math.max(...points.map((p) => p.value), objective ?? 0) * 1.1);
  const x = (t: number) => M.left + ((t - t0) / (t1 - t0)) * plotW;
  const y = (v: number) => M.top + plotH - (v / yMax) * plotH;

  // Grid and y labels.
  for (let i = 0; i <= 4; i++) {
    const v = (yMax / 4) * i;
    parts.push(
      `<line x1="${M.left}" x2="${M.left + plotW}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="${COLORS.grid}" stroke-width="1"/>`,
    );
    parts.push(
      `<text x="${M.left - 8}" y="${f(y(v) + 4)}" font-size="11" text-anchor="end" fill="#57606a">${escapeHtml(`${round(v)} ${opts.unit}`)}</text>`,
    );
  }
  // Time labels: first, middle, last.
  for (const t of [t0, (t0 + t1) / 2, t1]) {
    const label = new Date(t).toISOString().replace('T', ' ').slice(0, 16);
    parts.push(
      `<text x="${f(x(t))}" y="${H - 12}" font-size="11" text-anchor="middle" fill="#57606a">${escapeHtml(label)}</text>`,
    );
  }
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + plotH}" stroke="#8c959f"/>`);
  parts.push(
    `<line x1="${M.left}" x2="${M.left + plotW}" y1="${M.top + plotH}" y2="${M.top + plotH}" stroke="#8c959f"/>`,
  );

  if (objective !== undefined) {
    parts.push(
      `<line class="objective" x1="${M.left}" x2="${M.left + plotW}" y1="${f(y(objective))}" y2="${f(y(objective))}" stroke="${COLORS.objective}" stroke-width="2" stroke-dasharray="8 5"/>`,
      // Inside the plot, above the line at its left end: the legend owns the right margin.
      `<text x="${M.left + 6}" y="${f(y(objective) - 6)}" font-size="12" font-weight="600" fill="${COLORS.objective}">${escapeHtml(`objective ${objective} ${opts.unit}`)}</text>`,
    );
  }
  // Drills joined by a line: the trend an auditor looks for.
  const drills = points.filter((p) => p.kind === 'drill').sort((a, b) => a.at - b.at);
  if (drills.length > 1) {
    parts.push(
      `<polyline fill="none" stroke="${COLORS.drill}" stroke-width="2" points="${drills.map((p) => `${f(x(p.at))},${f(y(p.value))}`).join(' ')}"/>`,
    );
  }
  for (const p of points) {
    const color = p.passed ? COLORS[p.kind] : COLORS.failed;
    const tip = `<title>${escapeHtml(p.label)}</title>`;
    parts.push(
      p.kind === 'drill'
        ? `<circle class="point" cx="${f(x(p.at))}" cy="${f(y(p.value))}" r="6" fill="${color}" stroke="#fff" stroke-width="1.5">${tip}</circle>`
        : `<rect class="point" x="${f(x(p.at) - 6)}" y="${f(y(p.value) - 6)}" width="12" height="12" fill="${color}" stroke="#fff" stroke-width="1.5">${tip}</rect>`,
    );
  }
  // Legend.
  const lx = M.left + plotW + 8;
  parts.push(
    `<circle cx="${lx + 6}" cy="${M.top + 40}" r="6" fill="${COLORS.drill}"/><text x="${lx + 18}" y="${M.top + 44}" font-size="12" fill="${COLORS.text}">drill</text>`,
    `<rect x="${lx}" y="${M.top + 56}" width="12" height="12" fill="${COLORS.recovery}"/><text x="${lx + 18}" y="${M.top + 66}" font-size="12" fill="${COLORS.text}">recovery</text>`,
    `<circle cx="${lx + 6}" cy="${M.top + 84}" r="6" fill="${COLORS.failed}"/><text x="${lx + 18}" y="${M.top + 88}" font-size="12" fill="${COLORS.text}">not passed</text>`,
  );
  return wrap(opts.id, opts.title, parts);
}

function wrap(id: string, title: string, parts: string[]): string {
  return (
    `<svg id="${escapeHtml(id)}" class="chart" role="img" aria-label="${escapeHtml(title)}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">` +
    `<rect width="${W}" height="${H}" fill="#ffffff"/>${parts.join('')}</svg>`
  );
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= v) return m * mag;
  return 10 * mag;
}

const f = (n: number) => n.toFixed(1);
const round = (v: number) => (v >= 10 ? String(Math.round(v)) : v.toFixed(1).replace(/\.0$/, ''));
