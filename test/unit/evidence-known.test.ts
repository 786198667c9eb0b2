// readEvidenceHistory with `known` (what lifeboat metrics keeps between
// scrapes), on a real file:// repository: a record read once is not fetched
// again, a key no longer listed is forgotten, and a new record is read.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readEvidenceHistory } from '../../src/evidence/list';
import type { Evidence } from '../../src/recovery/contract';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-evidence-known-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const record = (runId: string, startedAt: string) => ({
  runId,
  workflowId: `drill-${runId}`,
  kind: 'drill',
  runbook: 'orders',
  cluster: 'orders',
  target: { latest: true },
  startedAt,
  finishedAt: startedAt,
  validationStatus: 'passed',
});

describe('readEvidenceHistory with known records', () => {
  it('does not fetch a record it knows again, forgets one no longer listed, and reads a new one', async () => {
    const repo = await openRepository(`file://${dir}`, {});
    const put = (runId: string, body: unknown) => {
      const bytes = Buffer.from(JSON.stringify(body));
      return repo.put(keys.evidence('orders', runId), bytes, {
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
    };
    await put('a', record('a', '2026-12-01T03:00:00Z'));
    await put('b', record('b', '2026-12-02T03:00:00Z'));
    const known = new Map<string, Evidence>();
    expect((await readEvidenceHistory(repo, 'orders', known)).records.map((r) => r.runId)).toEqual(['a', 'b']);
    expect([...known.keys()].sort()).toEqual([keys.evidence('orders', 'a'), keys.evidence('orders', 'b')]);

    // Damaged in place: a reader that fetched it again would call it unreadable.
    writeFileSync(path.join(dir, keys.evidence('orders', 'a')), 'not json');
    const again = await readEvidenceHistory(repo, 'orders', known);
    expect(again.records.map((r) => r.runId)).toEqual(['a', 'b']);
    expect(again.unreadable).toEqual([]);
    expect((await readEvidenceHistory(repo, 'orders')).unreadable.map((u) => u.key)).toEqual([
      keys.evidence('orders', 'a'),
    ]);

    await repo.delete([keys.evidence('orders', 'b')]);
    await put('c', record('c', '2026-12-03T03:00:00Z'));
    expect((await readEvidenceHistory(repo, 'orders', known)).records.map((r) => r.runId)).toEqual(['a', 'c']);
    expect([...known.keys()].sort()).toEqual([keys.evidence('orders', 'a'), keys.evidence('orders', 'c')]);
  });
});
