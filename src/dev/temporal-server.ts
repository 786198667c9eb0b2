// A Temporal dev server for the demo and the tests: the CLI that
// scripts/setup.sh builds when there is one, else the one the Temporal SDK
// downloads (a laptop without Go). Loopback only. Either way it starts with
// Lifeboat's search attributes registered (src/recovery/search-attributes.ts),
// so recoveries can be filtered by runbook and by the step awaiting a human.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { Connection } from '@temporalio/client';
import { LifeboatError } from '../errors';
import { AWAITING_ATTRIBUTE, RUNBOOK_ATTRIBUTE, devServerSearchAttributeArgs } from '../recovery/search-attributes';
import { findTool } from '../tools';
import { stopChild } from './child';

export interface DevServerOptions {
  port: number;
  /** Serve the Web UI on this port; none when undefined. */
  uiPort?: number;
  /** Keep history across restarts; in memory when undefined. */
  dbFilename?: string;
  logFile: string;
}

export interface DevServer {
  address: string;
  stop(): Promise<void>;
}

async function waitUntilServing(address: string, child: ChildProcess | undefined, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) {
      throw new LifeboatError('TOOL_FAILED', `the Temporal dev server exited with code ${child.exitCode}`, {
        hints: [`see ${logFile}`, `is port ${address.split(':')[1]} already in use?`],
      });
    }
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.getSystemInfo({});
        return;
      } finally {
        await conn.close();
      }
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new LifeboatError(
    'TOOL_FAILED',
    `the Temporal dev server did not answer on ${address} within 60 s: ${String(last)}`,
    {
      hints: [`see ${logFile}`],
    },
  );
}

export async function startTemporalDevServer(opts: DevServerOptions): Promise<DevServer> {
  const address = `127.0.0.1:${opts.port}`;
  const bin = findTool('temporal');
  if (!bin) {
    process.stderr.write('Temporal CLI not built (no Go?): using the dev server the Temporal SDK downloads\n');
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        ip: '127.0.0.1',
        port: opts.port,
        uiPort: opts.uiPort,
        ui: opts.uiPort !== undefined,
        dbFilename: opts.dbFilename,
        searchAttributes: [RUNBOOK_ATTRIBUTE, AWAITING_ATTRIBUTE],
      },
    });
    return { address, stop: () => env.teardown() };
  }
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'warn'];
  if (opts.uiPort !== undefined) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.dbFilename) args.push('--db-filename', opts.dbFilename);
  args.push(...devServerSearchAttributeArgs());
  const log = openSync(opts.logFile, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', log, log] });
  try {
    await waitUntilServing(address, child, opts.logFile);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return {
    address,
    stop: () => stopChild(child),
  };
}
