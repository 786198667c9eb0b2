// `lifeboat metrics [--runbook <name>...] --listen 127.0.0.1:9188`: serves
// /metrics for Prometheus, per runbook (src/metrics/). Without --runbook,
// every runbook in the runbooks directory. Runbooks are read once at the
// start: a typo stops it here, not at the first scrape.
import { readdirSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { LifeboatError, errorMessage } from '../../errors';
import { MetricsCollector } from '../../metrics/collector';
import { serveMetrics } from '../../metrics/server';
import type { MetricsTarget } from '../../metrics/sources';
import { openRepository } from '../../repository';
import { loadRunbook, runbooksDir } from '../../runbook/load';
import { clusterName } from '../../runbook/schema';
import { intOption, temporalTarget, type TemporalOptions } from '../context';

type Options = TemporalOptions & {
  runbook?: string[];
  runbooksDir?: string;
  listen: string;
  timeout: string;
  cache: string;
  temporal?: boolean;
};

export async function run(opts: Options): Promise<number> {
  const { host, port } = parseListen(opts.listen);
  const timeoutMs = intOption(opts.timeout, '--timeout') * 1000;
  const cacheMs = intOption(opts.cache, '--cache', 0) * 1000;
  const names = opts.runbook?.length ? opts.runbook : runbooksIn(opts.runbooksDir);
  const targets: MetricsTarget[] = [];
  for (const name of names) {
    const runbook = await loadRunbook(name, opts.runbooksDir);
    if (targets.some((t) => t.runbook.name === runbook.name)) continue;
    targets.push({
      runbook,
      repo: await openRepository(runbook.repository.url, runbook.repository),
      cluster: clusterName(runbook),
    });
  }

  let connecting: Promise<Client> | undefined;
  const temporal = opts.temporal === false ? undefined : await temporalTarget(opts);
  const collector = new MetricsCollector(targets, {
    timeoutMs,
    cacheMs,
    log: (line) => process.stderr.write(`${line}\n`),
    ...(temporal
      ? {
          temporal: async () => {
            const { connectClient } = await import('../../client/temporal');
            // Connected once and kept (the SDK reconnects by itself); a failed connect is tried again next scrape.
            connecting ??= connectClient(temporal).catch((err: unknown) => {
              connecting = undefined;
              throw err;
            });
            return connecting;
          },
        }
      : {}),
  });
  let served;
  try {
    served = await serveMetrics(collector, host, port);
  } catch (err) {
    throw new LifeboatError('INPUT_INVALID', `--listen ${opts.listen}: cannot listen there: ${errorMessage(err)}`, {
      hints: ['another exporter may hold the port: pick another with --listen 127.0.0.1:<port>'],
    });
  }
  const what = targets.map((t) => t.runbook.name).join(', ');
  process.stderr.write(
    `lifeboat metrics serving http://${served.address}/metrics for runbook${targets.length === 1 ? '' : 's'} ${what}` +
      `${temporal ? `; recoveries from Temporal at ${temporal.address} (namespace ${temporal.namespace})` : '; no Temporal (--no-temporal)'}` +
      `; each read limited to ${timeoutMs / 1000} s, results kept ${cacheMs / 1000} s. Ctrl-C stops it.\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await served.close();
  if (connecting) await connecting.then((c) => c.connection.close()).catch(() => undefined);
  return 0;
}

/** host:port, [v6]:port; loopback unless the operator says otherwise. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `--listen: expected host:port, e.g. 127.0.0.1:9188 or [::1]:9188, got ${JSON.stringify(value)}`,
      {
        hints: ['port 0 asks for any free port (printed at the start)'],
      },
    );
  }
  return { host: (m[1] ?? m[2])!, port };
}

function runbooksIn(dir?: string): string[] {
  const base = runbooksDir(dir);
  let files: string[];
  try {
    files = readdirSync(base)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
  } catch (err) {
    throw new LifeboatError(
      'RUNBOOK_NOT_FOUND',
      `no --runbook given, and the runbooks directory ${base} cannot be read: ${errorMessage(err)}`,
      {
        hints: ['name them: --runbook orders --runbook billing', 'or pass --runbooks-dir (env LIFEBOAT_RUNBOOKS_DIR)'],
      },
    );
  }
  if (files.length === 0) {
    throw new LifeboatError('RUNBOOK_NOT_FOUND', `no --runbook given, and ${base} holds no runbook (*.yaml)`, {
      hints: ['name them: --runbook orders', 'or pass --runbooks-dir (env LIFEBOAT_RUNBOOKS_DIR)'],
    });
  }
  return files.map((f) => `${base}/${f}`);
}
