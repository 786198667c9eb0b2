// How one scrape of lifeboat metrics treats its sources, with plain functions
// for the reads (what each really reads is in test/e2e/metrics.test.ts): a
// read that never answers, a read still in flight, the cache, and scrapes
// that arrive together. The clock is the test's; no test waits on time.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsCollector } from '../../src/metrics/collector';
import type { MetricsTarget, SourceSample } from '../../src/metrics/sources';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import { projectRoot } from '../../src/tools';
import { parseExposition } from '../harness/prometheus';

async function target(): Promise<MetricsTarget> {
  const runbook = await loadRunbook(path.join(projectRoot(), 'runbooks', 'orders.example.yaml'));
  return { runbook, repo: {} as Repository, cluster: 'orders' };
}

/** A read the test releases when it wants, counting how often it was started. */
function heldRead(samples: SourceSample[]) {
  let release: () => void = () => undefined;
  const state = {
    started: 0,
    held: true,
    read: async (): Promise<SourceSample[]> => {
      state.started++;
      if (state.held) await new Promise<void>((resolve) => (release = resolve));
      return samples;
    },
    release() {
      state.held = false;
      release();
    },
  };
  return state;
}

const mine = { runbook: 'orders', cluster: 'orders' };
const backups: SourceSample[] = [{ name: 'lifeboat_backups_verified', value: 2 }];
const archiver: SourceSample[] = [{ name: 'lifeboat_archive_failed_total', value: 7 }];

describe('MetricsCollector', () => {
  it('shows a read that never answers as lifeboat_up 0 with its error counted and logged, and still serves the others', async () => {
    const primary = heldRead(archiver);
    const logged: string[] = [];
    const c = new MetricsCollector([await target()], {
      timeoutMs: 50,
      cacheMs: 0,
      log: (l) => logged.push(l),
      reads: () => [
        ['primary', primary.read],
        ['repository', async () => backups],
      ],
    });
    const m = parseExposition(await c.scrape());
    expect(m.value('lifeboat_up', { ...mine, source: 'primary' })).toBe(0);
    expect(m.value('lifeboat_scrape_errors_total', { ...mine, source: 'primary' })).toBe(1);
    expect(m.find('lifeboat_archive_failed_total')).toEqual([]);
    expect(m.value('lifeboat_up', { ...mine, source: 'repository' })).toBe(1);
    expect(m.value('lifeboat_scrape_errors_total', { ...mine, source: 'repository' })).toBe(0);
    expect(m.value('lifeboat_backups_verified', mine)).toBe(2);
    expect(m.value('lifeboat_rpo_objective_seconds', mine)).toBe(300);
    expect(logged).toEqual([
      'lifeboat metrics: runbook orders: reading the primary failed: no answer within 0.05 s (the read goes on; the next scrape waits for it rather than start another)',
    ]);
    primary.release();
  });

  it('joins a read still in flight instead of starting another, and starts a new one once it has ended', async () => {
    const primary = heldRead(archiver);
    const c = new MetricsCollector([await target()], {
      timeoutMs: 50,
      cacheMs: 0,
      reads: () => [['primary', primary.read]],
    });
    await c.scrape();
    const second = parseExposition(await c.scrape());
    expect(primary.started).toBe(1);
    expect(second.value('lifeboat_scrape_errors_total', { ...mine, source: 'primary' })).toBe(2);

    primary.release();
    // The held read ended; the next scrape joins nothing and reads again.
    await new Promise((r) => setImmediate(r));
    const third = parseExposition(await c.scrape());
    expect(primary.started).toBe(2);
    expect(third.value('lifeboat_up', { ...mine, source: 'primary' })).toBe(1);
    expect(third.value('lifeboat_archive_failed_total', mine)).toBe(7);
    expect(third.value('lifeboat_scrape_errors_total', { ...mine, source: 'primary' })).toBe(2);
  });

  it('serves a result again within cacheMs, and reads afresh after it', async () => {
    let reads = 0;
    let now = new Date('2026-12-04T06:00:00Z');
    const c = new MetricsCollector([await target()], {
      timeoutMs: 1000,
      cacheMs: 5000,
      now: () => now,
      reads: () => [['repository', async () => [{ name: 'lifeboat_backups_verified', value: ++reads }]]],
    });
    const first = await c.scrape();
    now = new Date(now.getTime() + 4999);
    expect(await c.scrape()).toBe(first);
    expect(reads).toBe(1);
    now = new Date(now.getTime() + 1);
    expect(parseExposition(await c.scrape()).value('lifeboat_backups_verified', mine)).toBe(2);
  });

  it('answers scrapes that arrive together from one collection', async () => {
    const repository = heldRead(backups);
    const c = new MetricsCollector([await target()], {
      timeoutMs: 60_000,
      cacheMs: 0,
      reads: () => [['repository', repository.read]],
    });
    const both = Promise.all([c.scrape(), c.scrape()]);
    repository.release();
    const [a, b] = await both;
    expect(a).toBe(b);
    expect(repository.started).toBe(1);
  });
});
