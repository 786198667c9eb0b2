// The Lifeboat worker: polls `lifeboat` (workflows, and activities that reach
// systems over the network) and, with a host, `lifeboat-host-<host>`
// (activities that need that host's disk and processes). See DESIGN.md §3.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type LogLevel,
  type WorkerOptions,
} from '@temporalio/worker';
import * as activities from '../activities';
import { ensureSearchAttributes } from './recovery/search-attributes';
import { hostQueue, TASK_QUEUE } from './runbook/schema';
import { connectionOptions, unreachable, type TemporalTarget } from './client/temporal-config';
import { LifeboatError, errorMessage } from './errors';

/** Where Temporal is: a TemporalTarget (src/client/temporal-config.ts), or just an address and namespace (plaintext). */
export interface WorkerConfig extends TemporalTarget {
  /** Poll this host's queue too. */
  host?: string;
  /** Poll the shared `lifeboat` queue (default true). */
  shared?: boolean;
  /** Overrides the shared task queue (tests run isolated queues side by side). */
  taskQueue?: string;
  /** host:port where the Temporal SDK's Prometheus exporter serves the worker's temporal_* metrics. */
  metrics?: string;
}

export interface RunningWorkers {
  workers: Worker[];
  /** Resolves when every worker has stopped. */
  done: Promise<void>;
  shutdown(): Promise<void>;
  /** Runs until SIGINT or SIGTERM, then shuts the workers down and resolves. */
  runUntilSignal(): Promise<void>;
}

/** A module of workflows/, compiled or not: dist/src/worker.js → dist/workflows; src/worker.ts → workflows (the Temporal bundler compiles TypeScript itself). */
function workflowModule(name: string): string {
  const dir = path.join(__dirname, '..', 'workflows');
  const file = [`${name}.js`, `${name}.ts`].map((f) => path.join(dir, f)).find((f) => existsSync(f));
  if (!file) throw new Error(`workflows not found in ${dir}: run npm run build`);
  return file;
}

/** The workflows, and the interceptor that names each activity's runbook step in the UI (workflows/summaries.ts). */
const WORKFLOW_MODULES = {
  workflowsPath: () => workflowModule('index'),
  interceptors: () => workflowModule('summaries'),
};

/** What the process's Runtime was installed with: once per process, so a second worker cannot change it. */
let runtimeInstalled: { metrics?: string } | undefined;

/**
 * LIFEBOAT_LOG_LEVEL (TRACE, DEBUG, INFO, WARN, ERROR) sets the worker's log level; `metrics` (host:port,
 * lifeboat worker --metrics or LIFEBOAT_WORKER_METRICS) starts the SDK's Prometheus exporter there
 * (temporal_* metrics at /metrics). The runtime is installed once per process.
 */
function installRuntime(metrics?: string): void {
  if (runtimeInstalled) {
    if (metrics && runtimeInstalled.metrics !== metrics) {
      throw new LifeboatError(
        'INPUT_INVALID',
        `worker metrics at ${metrics}: this process's Temporal runtime was installed ${runtimeInstalled.metrics ? `with metrics at ${runtimeInstalled.metrics}` : 'without metrics'}, and it is installed once per process`,
        {
          hints: ['start the worker in a process of its own: lifeboat worker --metrics <host:port>'],
        },
      );
    }
    return;
  }
  const level = (process.env.LIFEBOAT_LOG_LEVEL?.toUpperCase() ?? 'INFO') as LogLevel;
  try {
    // Signals are ours to handle (runUntilSignal): the runtime's own handler
    // lets the process exit before whoever started the workers has cleaned up.
    Runtime.install({
      logger: new DefaultLogger(level),
      shutdownSignals: [],
      // Counters with _total and durations in seconds: what Prometheus names expect.
      ...(metrics
        ? {
            telemetryOptions: {
              metrics: {
                prometheus: { bindAddress: metrics, countersTotalSuffix: true, useSecondsForDurations: true },
              },
            },
          }
        : {}),
    });
  } catch (err) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `worker metrics: cannot serve the Temporal SDK's metrics at ${JSON.stringify(metrics)}: ${errorMessage(err)}`,
      {
        hints: ['give a free host:port, e.g. --metrics 127.0.0.1:9464 (env LIFEBOAT_WORKER_METRICS)'],
        cause: err,
      },
    );
  }
  runtimeInstalled = metrics ? { metrics } : {};
}

export async function startWorkers(cfg: WorkerConfig): Promise<RunningWorkers> {
  installRuntime(cfg.metrics);
  // The same resolution as the CLI's and chat-ops' clients, so a profile or TEMPORAL_TLS_* that works for one works for all.
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(connectionOptions(cfg));
  } catch (err) {
    throw unreachable(cfg, err);
  }
  if (cfg.shared !== false) {
    // Before polling: a recovery upserting an attribute the namespace does not
    // know would fail its workflow task over and over, stuck at its first step.
    try {
      const added = await ensureSearchAttributes(connection.operatorService, cfg.namespace);
      if (added.length > 0)
        process.stderr.write(
          `lifeboat worker: registered search attributes ${added.join(', ')} in namespace ${cfg.namespace}\n`,
        );
    } catch (err) {
      await connection.close();
      throw err;
    }
  }
  // Heartbeats carry restore bytes and replay position, read by `lifeboat
  // status` and the UI; by default the SDK sends them to the server only every
  // 0.8 x heartbeatTimeout, which would make progress bars jump every 24 s.
  const base: Pick<WorkerOptions, 'connection' | 'namespace' | 'maxHeartbeatThrottleInterval'> = {
    connection,
    namespace: cfg.namespace,
    maxHeartbeatThrottleInterval: '3 seconds',
  };
  const workers: Worker[] = [];
  if (cfg.shared !== false) {
    workers.push(
      await Worker.create({
        ...base,
        taskQueue: cfg.taskQueue ?? TASK_QUEUE,
        workflowsPath: WORKFLOW_MODULES.workflowsPath(),
        interceptors: { workflowModules: [WORKFLOW_MODULES.interceptors()] },
        activities,
      }),
    );
  }
  if (cfg.host) {
    workers.push(await Worker.create({ ...base, taskQueue: hostQueue(cfg.host), activities }));
  }
  if (workers.length === 0) throw new Error('nothing to poll: --no-shared needs --host <host>');
  const done = Promise.all(workers.map((w) => w.run())).then(async () => {
    await connection.close();
  });
  const shutdown = async () => {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await done;
  };
  return {
    workers,
    done,
    shutdown,
    async runUntilSignal() {
      // A pending promise alone does not keep Node alive; this timer does,
      // until the workers have drained.
      const keepAlive = setInterval(() => undefined, 60_000);
      const onSignal = () => void shutdown();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await done;
      } finally {
        clearInterval(keepAlive);
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  };
}
