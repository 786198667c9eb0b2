// The Temporal UI link `lifeboat recover`, status, pending and chat-ops
// print: the run's User Metadata tab under LIFEBOAT_UI_URL when set; else
// under a dev server's UI on the frontend's port + 1000, once it answers as
// a Temporal UI (a real dev server with its UI, started here); else no link
// and how to get one, never 127.0.0.1:8233 whatever TEMPORAL_ADDRESS says.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  answersAsTemporalUi,
  checklistLines,
  devServerUi,
  isLoopback,
  parseAddress,
  runPage,
  temporalUiBase,
  workflowPage,
} from '../../src/cli/ui-link';
import { startOwnDevServer } from '../harness/dev-server';
import { freePort, waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';
import { runCleanups } from '../harness/cleanups';

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

/** A port p with p + 1000 free too (the dev server's UI port). */
async function portPair(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p + 1000 > 65535) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(p + 1000, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return p;
  }
}

describe('the Temporal UI link of a run', () => {
  it("reads host and port from TEMPORAL_ADDRESS forms, and puts a dev server's UI on port + 1000", () => {
    expect(parseAddress('127.0.0.1:17233')).toEqual({ host: '127.0.0.1', port: 17233 });
    expect(parseAddress('[::1]:7233')).toEqual({ host: '::1', port: 7233 });
    expect(parseAddress('temporal.internal')).toEqual({ host: 'temporal.internal', port: 7233 });
    expect(devServerUi('127.0.0.1:17233')).toBe('http://127.0.0.1:18233');
    expect(devServerUi('[::1]:7233')).toBe('http://[::1]:8233');
    expect(devServerUi('10.0.0.5:65000')).toBeUndefined();
  });

  it("links the run's User Metadata tab (the checklist), which the UI serves only under the run id, and says so beside the link", () => {
    const runId = '0199a3c2-7d1e-7c3a-9f00-5b2c1d4e8a10';
    expect(runPage('http://ui.example:8080', 'prod ns', 'recover orders/1', runId)).toBe(
      `http://ui.example:8080/namespaces/prod%20ns/workflows/recover%20orders%2F1/${runId}/user-metadata`,
    );
    expect(workflowPage('http://ui.example:8080', 'default', 'recover-orders-1')).toBe(
      'http://ui.example:8080/namespaces/default/workflows/recover-orders-1',
    );
    expect(checklistLines('http://ui.example:8080/x')).toEqual([
      'Temporal UI, the run\'s "User Metadata" tab (Current Details: the checklist; the page does not refresh itself, press R for the latest):',
      'http://ui.example:8080/x',
    ]);
  });

  it('LIFEBOAT_UI_URL wins, whatever the address', async () => {
    expect(
      await temporalUiBase('temporal.internal:7233', { LIFEBOAT_UI_URL: 'https://temporal.example.com/ ' }),
    ).toEqual({ base: 'https://temporal.example.com', from: 'env' });
  });

  it('--ui-url wins over LIFEBOAT_UI_URL', async () => {
    expect(
      await temporalUiBase(
        'temporal.internal:7233',
        { LIFEBOAT_UI_URL: 'https://env.example.com' },
        'https://flag.example.com/',
      ),
    ).toEqual({ base: 'https://flag.example.com', from: 'flag' });
  });

  it('never guesses a UI for a server that is not on this machine: no probe, the line saying how to get one', async () => {
    const r = await temporalUiBase('temporal.internal:7233', {});
    expect(r).toEqual({
      hint: "no Temporal UI link: the server at temporal.internal:7233 is not on this machine, and its UI's address cannot be derived from it; pass --ui-url or set LIFEBOAT_UI_URL to your Temporal Web UI's address (e.g. export LIFEBOAT_UI_URL=https://temporal.example.com) to get one here",
    });
    expect(['127.0.0.1:7233', 'localhost:7233', '[::1]:7233', '127.0.0.2:7233'].map(isLoopback)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(['10.0.0.5:7233', 'temporal.example.com:7233', '[fd00::1]:7233'].map(isLoopback)).toEqual([
      false,
      false,
      false,
    ]);
  });

  it('without it, a headless Temporal gets no link but the line saying how to get one (not 127.0.0.1:8233)', async () => {
    const address = temporalAddress();
    const r = await temporalUiBase(address, {});
    expect(r.base).toBeUndefined();
    expect('hint' in r && r.hint).toBe(
      `no Temporal UI link: ${devServerUi(address)} (where a dev server for ${address} keeps its UI) does not answer as one; pass --ui-url or set LIFEBOAT_UI_URL to your Temporal Web UI's address (e.g. export LIFEBOAT_UI_URL=https://temporal.example.com) to get one here`,
    );
  });

  it('finds the UI of a dev server on a port of its own (port + 1000) once it answers as a Temporal UI', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-ui-link-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const server = await startOwnDevServer(
      async () => {
        const p = await portPair();
        return { port: p, uiPort: p + 1000 };
      },
      { logFile: path.join(root, 'temporal.log') },
    );
    const port = server.port;
    cleanups.push(() => server.stop());
    // The frontend answers before the UI server: wait for the UI itself.
    await waitFor(
      'the dev server UI',
      async () => ((await answersAsTemporalUi(`http://127.0.0.1:${port + 1000}`)) ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(await temporalUiBase(server.address, {})).toEqual({
      base: `http://127.0.0.1:${port + 1000}`,
      from: 'dev-server',
    });
  }, 90_000);
});
