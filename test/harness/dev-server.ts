// A Temporal dev server of a test's own (with its Web UI), on ports picked
// free just before it starts. Between the pick and the bind another process
// on this loaded machine may take one of them (an outgoing connection's
// ephemeral port is enough): the server then exits at once saying "address
// already in use", and only then is it started again on new ports. Any
// other failure is the test's to see.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { LifeboatError } from '../../src/errors';
import { startTemporalDevServer, type DevServer, type DevServerOptions } from '../../src/dev/temporal-server';

export interface DevServerPorts {
  port: number;
  uiPort?: number;
}

const ATTEMPTS = 5;

/** Whether this attempt's part of the log (from byte `from` on) says a port was taken. */
function lostPortRace(err: unknown, logFile: string, from: number): boolean {
  if (!(err instanceof LifeboatError) || err.code !== 'TOOL_FAILED' || !existsSync(logFile)) return false;
  return /address already in use/.test(readFileSync(logFile).subarray(from).toString('utf8'));
}

export async function startOwnDevServer(
  pickPorts: () => Promise<DevServerPorts>,
  rest: Omit<DevServerOptions, 'port' | 'uiPort'>,
): Promise<DevServer & DevServerPorts> {
  const { logFile } = rest;
  for (let attempt = 1; ; attempt++) {
    const ports = await pickPorts();
    const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
    try {
      const server = await startTemporalDevServer({ ...rest, ...ports });
      return Object.assign(server, ports);
    } catch (err) {
      if (attempt >= ATTEMPTS || !lostPortRace(err, logFile, logStart)) throw err;
      process.stderr.write(
        `[dev-server] port ${ports.port} or ${ports.uiPort} was taken before the server bound it; new ports\n`,
      );
    }
  }
}
