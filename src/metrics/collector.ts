// One scrape of `lifeboat metrics`: every source of every runbook read at
// once, each under a time limit. A source that fails or does not answer in
// time shows as lifeboat_up{source} 0 with its error counted and written to
// stderr, never as an HTTP error: the other figures still arrive, and an
// alert on lifeboat_up says which read is broken.
//
// Two things keep scrapers from hammering PostgreSQL and S3: a result is
// served again for `cacheMs` (two Prometheus servers, or one with a short
// interval, share one read), and a source still being read when the next
// scrape comes is not read a second time: the scrape waits for the read in
// flight (again at most the time limit).
import type { Client } from '@temporalio/client';
import { errorMessage } from '../errors';
import type { Evidence } from '../recovery/contract';
import type { Source } from './catalog';
import { renderExposition, type Sample } from './exposition';
import {
  readEvidenceSource,
  readPrimarySource,
  readRepositorySource,
  readTemporalSource,
  type MetricsTarget,
  type SourceSample,
} from './sources';

export interface CollectorOptions {
  /** Time limit of each source's read. */
  timeoutMs: number;
  /** How long a scrape's result is served again. */
  cacheMs: number;
  /** The Temporal client, connected when first needed; absent: no temporal source (--no-temporal). */
  temporal?: () => Promise<Client>;
  /** Where failed reads are told (stderr). */
  log?: (line: string) => void;
  now?: () => Date;
  /** What to read per runbook, by source; the default reads the real sources (sources.ts). */
  reads?: (t: MetricsTarget, now: Date) => Array<[Source, () => Promise<SourceSample[]>]>;
}

class SourceTimeout extends Error {}

export class MetricsCollector {
  private readonly errors = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<SourceSample[]>>();
  private readonly evidence = new Map<string, Map<string, Evidence>>();
  private cached?: { at: number; text: string };
  private collecting?: Promise<string>;

  constructor(
    private readonly targets: readonly MetricsTarget[],
    private readonly opts: CollectorOptions,
  ) {}

  /** The exposition text: cached for cacheMs, and one collection at a time however many scrapes ask. */
  async scrape(): Promise<string> {
    const nowMs = this.now().getTime();
    if (this.cached && nowMs - this.cached.at < this.opts.cacheMs) return this.cached.text;
    this.collecting ??= this.collect().finally(() => {
      this.collecting = undefined;
    });
    return this.collecting;
  }

  private now(): Date {
    return this.opts.now ? this.opts.now() : new Date();
  }

  private async collect(): Promise<string> {
    const now = this.now();
    const perTarget = await Promise.all(this.targets.map((t) => this.collectTarget(t, now)));
    const text = renderExposition(perTarget.flat());
    this.cached = { at: now.getTime(), text };
    return text;
  }

  private async collectTarget(t: MetricsTarget, now: Date): Promise<Sample[]> {
    const base = { runbook: t.runbook.name, cluster: t.cluster };
    const reads = this.opts.reads ? this.opts.reads(t, now) : this.sourceReads(t, now);

    const out: Sample[] = [
      { name: 'lifeboat_rpo_objective_seconds', labels: base, value: t.runbook.objectives.rpoSeconds },
      { name: 'lifeboat_rto_objective_seconds', labels: base, value: t.runbook.objectives.rtoSeconds },
    ];
    const results = await Promise.all(
      reads.map(async ([source, read]) => ({ source, ...(await this.read(`${t.runbook.name}\0${source}`, read)) })),
    );
    for (const r of results) {
      const labels = { ...base, source: r.source };
      out.push(
        { name: 'lifeboat_up', labels, value: r.samples ? 1 : 0 },
        { name: 'lifeboat_scrape_errors_total', labels, value: this.errors.get(`${t.runbook.name}\0${r.source}`) ?? 0 },
        { name: 'lifeboat_scrape_duration_seconds', labels, value: r.seconds },
      );
      if (!r.samples)
        this.opts.log?.(`lifeboat metrics: runbook ${t.runbook.name}: reading the ${r.source} failed: ${r.error}`);
      for (const s of r.samples ?? []) out.push({ name: s.name, labels: { ...base, ...s.labels }, value: s.value });
    }
    return out;
  }

  private sourceReads(t: MetricsTarget, now: Date): Array<[Source, () => Promise<SourceSample[]>]> {
    let evidence = this.evidence.get(t.cluster);
    if (!evidence) this.evidence.set(t.cluster, (evidence = new Map()));
    const known = evidence;
    const reads: Array<[Source, () => Promise<SourceSample[]>]> = [
      ['primary', () => readPrimarySource(t, this.opts.timeoutMs)],
      ['repository', () => readRepositorySource(t, now)],
      ['evidence', () => readEvidenceSource(t, now, known)],
    ];
    const temporal = this.opts.temporal;
    if (temporal)
      reads.push(['temporal', async () => readTemporalSource(t, await temporal(), now, this.opts.timeoutMs)]);
    return reads;
  }

  /** One source's read under the time limit, joining a read of the same source still in flight. */
  private async read(
    key: string,
    read: () => Promise<SourceSample[]>,
  ): Promise<{ samples?: SourceSample[]; error?: string; seconds: number }> {
    const started = Date.now();
    let flight = this.inFlight.get(key);
    if (!flight) {
      flight = read().finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, flight);
    }
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new SourceTimeout(
              `no answer within ${this.opts.timeoutMs / 1000} s (the read goes on; the next scrape waits for it rather than start another)`,
            ),
          ),
        this.opts.timeoutMs,
      );
    });
    try {
      return { samples: await Promise.race([flight, limit]), seconds: (Date.now() - started) / 1000 };
    } catch (err) {
      this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
      return { error: errorMessage(err).split('\n')[0] ?? 'failed', seconds: (Date.now() - started) / 1000 };
    } finally {
      clearTimeout(timer);
    }
  }
}
