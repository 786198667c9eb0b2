// Ports for the tests' servers come from below the kernel's ephemeral range,
// a slice per Vitest worker (src/dev/ports.ts): a primary restarted on its
// port must not find it held by some outgoing connection's local end.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ephemeralRange, freePort, portSlice } from '../../src/dev/ports';

describe('free ports', () => {
  it("reads the kernel's ephemeral range, and Linux's default when the file is not there or not a range", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-ports-'));
    const file = path.join(dir, 'ip_local_port_range');
    writeFileSync(file, '40000\t50000\n');
    expect(ephemeralRange(file)).toEqual([40000, 50000]);
    writeFileSync(file, 'garbage\n');
    expect(ephemeralRange(file)).toEqual([32768, 60999]);
    expect(ephemeralRange(path.join(dir, 'missing'))).toEqual([32768, 60999]);
  });

  it('gives each Vitest worker its own slice below the ephemeral range, and none when there is no room', () => {
    expect(portSlice(undefined, [32768, 60999])).toEqual([15000, 17000]);
    expect(portSlice('1', [32768, 60999])).toEqual([17000, 19000]);
    expect(portSlice('2', [32768, 60999])).toEqual([19000, 21000]);
    // 8 slices fit under 32768; worker 9 shares worker 1's.
    expect(portSlice('9', [32768, 60999])).toEqual([17000, 19000]);
    expect(portSlice('1', [16000, 60999])).toBeUndefined();
  });

  it("hands out distinct ports of this worker's slice, skipping one a server already listens on", async () => {
    const slice = portSlice(process.env.VITEST_POOL_ID);
    expect(slice).toBeDefined();
    const [first, end] = slice!;
    const a = await freePort();
    // Something else listens on the next port of the slice: freePort passes over it.
    const next = a + 1 < end ? a + 1 : first;
    const srv = createServer();
    await new Promise<void>((resolve) => srv.listen(next, '127.0.0.1', resolve));
    try {
      const ports = [a];
      for (let i = 0; i < 5; i++) ports.push(await freePort());
      expect(new Set(ports).size).toBe(6);
      expect(ports).not.toContain(next);
      for (const p of ports) {
        expect(p).toBeGreaterThanOrEqual(first);
        expect(p).toBeLessThan(end);
        expect(p).toBeLessThan(ephemeralRange()[0]);
      }
    } finally {
      await new Promise((resolve) => srv.close(resolve));
    }
  });
});
