// Free loopback ports and polling, for the dev servers, the tests and the
// benchmarks: parallel runs on one machine must not collide.
//
// Ports are taken below the kernel's ephemeral range, never from it: every
// outgoing connection on the machine (to MinIO, Temporal, PostgreSQL) takes
// its local port from that range, so a server that stops and starts again on
// such a port (a primary restarted for a new archive_command) could find it
// held by some client in between and fail to bind. Below it, only another
// server can hold a port, and each Vitest worker process takes its ports from
// its own slice (VITEST_POOL_ID), so two test files never pick the same one.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports this process already handed out: a port not yet listened on looks free. */
const handedOut = new Set<number>();

const LOWEST = 15_000;
const SLICE = 2_000;

/** The kernel's ephemeral range, [first, last]; Linux's default when it cannot be read. */
export function ephemeralRange(file = '/proc/sys/net/ipv4/ip_local_port_range'): [number, number] {
  try {
    const [first, last] = readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(first) && Number.isInteger(last) && first! > 0 && last! >= first!) return [first!, last!];
  } catch {
    // not Linux, or /proc not mounted: the default below
  }
  return [32_768, 60_999];
}

/**
 * This process's slice of the ports below the ephemeral range, [first, end):
 * slice 0 for a process outside Vitest's workers (global setup, benchmarks,
 * `lifeboat dev`), slice N for worker N. Undefined when the range leaves too
 * little room below it (the kernel picks then).
 */
export function portSlice(
  poolId: string | undefined,
  [ephemeralFirst] = ephemeralRange(),
): [number, number] | undefined {
  const slices = Math.floor((ephemeralFirst - LOWEST) / SLICE);
  if (slices < 1) return undefined;
  const n = Number(poolId);
  const slice = Number.isInteger(n) && n > 0 ? n % slices : 0;
  return [LOWEST + slice * SLICE, LOWEST + (slice + 1) * SLICE];
}

function listenable(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const addr = srv.address();
      const p = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(p));
    });
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const slice = portSlice(process.env.VITEST_POOL_ID);
  if (slice) {
    const [first, end] = slice;
    const start = first + Math.floor(Math.random() * (end - first));
    for (let i = 0; i < end - first; i++) {
      const port = first + ((start - first + i) % (end - first));
      if (handedOut.has(port)) continue;
      if ((await listenable(port, host)) === port) {
        handedOut.add(port);
        return port;
      }
    }
  }
  // No room below the ephemeral range, or every port of the slice taken: the kernel's pick.
  for (;;) {
    const port = await listenable(0, host);
    if (port === undefined) throw new Error(`no free port on ${host}`);
    // Two calls in a row (restore.port, drill.port) must not get the same port.
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 60_000, intervalMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}
