// Reading what a Prometheus server would scrape: the text exposition format
// parsed strictly enough that a malformed line fails the test (every sample
// after its metric's TYPE line, label values unescaped), and an exporter
// started as a process, scraped over HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { stopChild } from '../../src/dev/child';
import { projectRoot } from '../../src/tools';
import type { Cleanups } from './cleanups';
import { waitFor } from './ports';

export interface ScrapedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  samples: ScrapedSample[];
  types: Map<string, string>;
  /** The samples of one metric whose labels include all of `labels`. */
  find(name: string, labels?: Record<string, string>): ScrapedSample[];
  /** The one value of a metric with these labels; fails when there is not exactly one. */
  value(name: string, labels?: Record<string, string>): number;
}

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;

export function parseExposition(text: string): Scrape {
  const samples: ScrapedSample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`not an exposition line: ${JSON.stringify(line)}`);
    const [, name, rawLabels, rawValue] = m as unknown as [string, string, string | undefined, string];
    const family = [...types.keys()].find(
      (t) => name === t || (/_(bucket|sum|count|total)$/.test(name) && name.startsWith(t)),
    );
    if (!family) throw new Error(`sample before its TYPE line: ${line}`);
    const labels: Record<string, string> = {};
    if (rawLabels) {
      LABEL_RE.lastIndex = 0;
      let consumed = 0;
      for (let lm = LABEL_RE.exec(rawLabels); lm; lm = LABEL_RE.exec(rawLabels)) {
        labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
        consumed = LABEL_RE.lastIndex;
      }
      if (consumed !== rawLabels.length) throw new Error(`malformed labels: ${line}`);
    }
    const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue);
    if (Number.isNaN(value) && rawValue !== 'NaN') throw new Error(`malformed value: ${line}`);
    samples.push({ name, labels, value });
  }
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    samples,
    types,
    find,
    value(name, labels = {}) {
      const found = find(name, labels);
      if (found.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${found.length} samples, expected 1`);
      return found[0]!.value;
    },
  };
}

export async function scrape(
  url: string,
): Promise<{ status: number; contentType: string | null; text: string; parsed: Scrape }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), text, parsed: parseExposition(text) };
}

/** `bin/lifeboat <args>` as a long-running process; stopped by the cleanups. Its stderr is kept for the test to read. */
export function startLifeboat(
  args: string[],
  cleanups: Cleanups,
  env: NodeJS.ProcessEnv = process.env,
): { child: ChildProcess; stderr: () => string } {
  const child = spawn(path.join(projectRoot(), 'bin', 'lifeboat'), args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  cleanups.push(() => stopChild(child));
  return { child, stderr: () => stderr };
}

/** Waits until the URL answers 200 (the process is listening), failing early if it exited. */
export async function waitServing(url: string, proc: { child: ChildProcess; stderr: () => string }): Promise<void> {
  await waitFor(
    `${url} to answer`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`exited ${proc.child.exitCode}: ${proc.stderr()}`);
      const res = await fetch(url).catch(() => undefined);
      return res?.ok ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}
