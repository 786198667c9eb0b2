// `lifeboat evidence` and `lifeboat report` on evidence records stored in a
// real repository (an s3:// prefix in the test MinIO), through the real
// binary; the report then opens in headless Chromium: the charts are drawn
// (their screenshot, saved under test-artifacts/report/, is far from blank),
// nothing is fetched from anywhere, and a hostile comment stays text.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import type { Evidence } from '../../src/recovery/contract';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { artifactsDir, s3Env, s3RepoUrl, useS3Env } from '../harness/services';

const exec = promisify(execFile);
const CLI = path.resolve(__dirname, '../../bin/lifeboat');
const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-report-'));
const SHOTS = path.join(artifactsDir(), 'report');
const hostile = '<script>window.pwned = 1</script>';
let browser: Browser | undefined;

async function lifeboat(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(CLI, args, {
      env: { ...process.env, ...s3Env(), LIFEBOAT_RUNBOOKS_DIR: dir },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A drill or recovery record as the workflows write it (DESIGN.md §7). */
function record(i: number, over: Partial<Evidence> = {}): Evidence {
  const started = new Date(Date.UTC(2026, 9, 1 + i * 3, 3, 0, 0));
  return {
    runId: `0193-run-${String(i).padStart(2, '0')}`,
    workflowId: `drill-audit-${started.toISOString()}`,
    kind: 'drill',
    runbook: 'audit',
    cluster: 'audit',
    backupId: started
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z'),
    target: { time: new Date(started.getTime() - 3600_000).toISOString() },
    startedAt: started.toISOString(),
    promotedAt: new Date(started.getTime() + 60_000).toISOString(),
    finishedAt: new Date(started.getTime() + 90_000).toISOString(),
    rtoObservedSeconds: 900 + ((i * 397) % 1500),
    rpoObservedSeconds: 20 + ((i * 53) % 240),
    rtoPhases: { restore: 400, replay: 300 },
    walSegmentsReplayed: 10 + i,
    invariants: [{ name: 'no negative amounts', passed: true, value: '0' }],
    approvals: [],
    steps: [],
    objectives: { rpoSeconds: 300, rtoSeconds: 2700 },
    validationStatus: 'passed',
    notes: [],
    ...over,
  };
}

const records: Evidence[] = [
  ...Array.from({ length: 9 }, (_, i) =>
    record(i, i === 5 ? { validationStatus: 'failed', rtoObservedSeconds: 3100 } : {}),
  ),
  record(9, {
    kind: 'recovery',
    workflowId: 'recover-audit-20261028T144000Z',
    incident: 'INC-1234',
    reason: 'bad UPDATE on orders',
    approvals: [
      { step: 'approve-fence', by: 'alice', at: '2026-10-28T14:41:00Z', decision: 'approve' },
      {
        step: 'approve-promote',
        by: 'bob',
        at: '2026-10-28T14:52:10Z',
        decision: 'approve',
        comment: `pending orders are back ${hostile}`,
      },
      { step: 'approve-promote', by: 'carol', at: '2026-10-28T14:53:00Z', decision: 'approve' },
    ],
  }),
];

beforeAll(async () => {
  useS3Env();
  const repoUrl = s3RepoUrl('report');
  writeFileSync(
    path.join(dir, 'audit.yaml'),
    // The primary is never contacted: evidence and report read the repository only.
    demoRunbookYaml({
      name: 'audit',
      pgPort: 1,
      repoUrl,
      endpointEnv: 'S3_ENDPOINT',
      host: 'nowhere',
      stateDir: dir,
      restorePort: 2,
      drillPort: 3,
    }),
  );
  const repo = await openRepository(repoUrl, { endpointEnv: 'S3_ENDPOINT' });
  for (const r of records) {
    const body = Buffer.from(JSON.stringify(r, null, 2));
    await repo.put(keys.evidence('audit', r.runId), body, {
      sha256: createHash('sha256').update(body).digest('hex'),
      contentType: 'application/json',
    });
  }
  const damaged = Buffer.from('{"kind": "drill", "runId": ');
  await repo.put('audit/evidence/0193-damaged.json', damaged, {
    sha256: createHash('sha256').update(damaged).digest('hex'),
  });
  mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('lists every drill and recovery with its figures, and names a damaged record', async () => {
  const r = await lifeboat('evidence', '--runbook', 'audit');
  expect(r.code).toBe(0);
  const lines = r.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^evidence of cluster audit in s3:\/\/\S+: 10 records \(9 drills, 1 recovery\)$/);
  expect(lines[1]).toMatch(/^KIND +STARTED +TARGET +RTO +RPO +WAL SEGMENTS +VERDICT +RUN ID$/);
  expect(lines[2]).toMatch(
    /^drill +2026-10-01 03:00:00Z +time 2026-10-01T02:00:00.000Z +900 s +20.0 s +10 +passed +0193-run-00$/,
  );
  expect(lines[7]).toMatch(/^drill +2026-10-16 03:00:00Z +.* +3100 s +.* +failed +0193-run-05$/);
  expect(lines[11]).toMatch(/^recovery +2026-10-28 03:00:00Z +.* +passed +0193-run-09$/);
  expect(lines[12]).toBe(
    `warning: audit/evidence/0193-damaged.json is not a readable evidence record: Unexpected end of JSON input`,
  );

  const json = await lifeboat('evidence', '--runbook', 'audit', '--json');
  const parsed = JSON.parse(json.stdout) as { records: Evidence[] };
  expect(parsed.records.map((x) => x.runId)).toEqual(records.map((x) => x.runId));
});

it('writes a report that Chromium shows with its charts, fetching nothing and running no script', async () => {
  const out = path.join(dir, 'report.html');
  const r = await lifeboat('report', '--runbook', 'audit', '--out', out);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(
    `report of cluster audit written to ${out}: 9 drills, 1 recovery, 1 unreadable record listed\n`,
  );
  const html = readFileSync(out, 'utf8');
  expect(html).not.toMatch(/<script/i);

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const requests: string[] = [];
  page.on('request', (req) => requests.push(req.url()));
  await page.goto(`file://${out}`);
  expect(requests).toEqual([`file://${out}`]);
  await expect(page.title()).resolves.toBe('Lifeboat recovery evidence: audit');

  // The hostile comment is text in the approvals table, and it ran nothing.
  const approvals = await page.locator('#approvals tbody tr').allInnerTexts();
  expect(approvals).toEqual([
    'alice\tapprove-fence\tapprove\t2026-10-28 14:41:00Z\t',
    `bob\tapprove-promote\tapprove\t2026-10-28 14:52:10Z\tpending orders are back ${hostile}`,
    'carol\tapprove-promote\tapprove\t2026-10-28 14:53:00Z\t',
  ]);
  expect(await page.evaluate('typeof window.pwned')).toBe('undefined');
  await expect(page.locator('#runs tbody tr').count()).resolves.toBe(10);

  // The RTO chart: ten points, the objective line, drawn and not blank.
  const chart = page.locator('#chart-rto');
  await expect(chart.locator('.point').count()).resolves.toBe(10);
  await expect(chart.locator('.objective').count()).resolves.toBe(1);
  const box = await chart.boundingBox();
  // 860 x 240 and its 1 px border.
  expect(box).toMatchObject({ width: 862, height: 242 });
  const shot = await chart.screenshot({ path: path.join(SHOTS, 'chart-rto.png') });
  await page.screenshot({ path: path.join(SHOTS, 'report.png'), fullPage: true });

  // Decode the PNG in a blank page's canvas and count what is not background.
  const blank = await browser.newPage();
  // A script string: these tests compile without the DOM types, and this runs in the page.
  const pixels = (await blank.evaluate(`(async () => {
    const img = new Image();
    img.src = 'data:image/png;base64,${shot.toString('base64')}';
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, img.width, img.height).data;
    let ink = 0, red = 0, blue = 0;
    const colours = new Set();
    for (let i = 0; i < data.length; i += 4) {
      const r = data[i], g = data[i + 1], b = data[i + 2];
      colours.add((r << 16) | (g << 8) | b);
      if (r < 245 || g < 245 || b < 245) ink++;
      if (r > 180 && g < 80 && b < 80) red++; // the objective line and the failed drill
      if (b > 200 && r < 60 && g < 140) blue++; // the drills
    }
    return { total: data.length / 4, ink, red, blue, colours: colours.size };
  })()`)) as { total: number; ink: number; red: number; blue: number; colours: number };
  expect(pixels.total).toBeGreaterThanOrEqual(860 * 240);
  // Axes, grid, labels, a line and ten markers: thousands of drawn pixels, in many shades.
  expect(pixels.ink).toBeGreaterThan(5000);
  expect(pixels.red).toBeGreaterThan(500);
  expect(pixels.blue).toBeGreaterThan(300);
  expect(pixels.colours).toBeGreaterThan(50);
});
