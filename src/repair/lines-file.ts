// A JSON-lines file written by a repair (snapshot, plan): streamed with
// back-pressure, never overwriting a file that is there ('wx': another run's
// file is left alone and refused), removed when the writer fails so a
// half-written file is never mistaken for a whole one.
import { once } from 'node:events';
import { createWriteStream, rmSync } from 'node:fs';
import { LifeboatError } from '../errors';

export interface LinesFile {
  write(value: unknown): Promise<void>;
  close(): Promise<void>;
  /** Ends the stream and removes the partial file. */
  abort(): Promise<void>;
}

export async function createLinesFile(file: string): Promise<LinesFile> {
  const out = createWriteStream(file, { flags: 'wx' });
  let failed: Error | undefined;
  out.on('error', (err) => {
    failed ??= err;
  });
  try {
    await once(out, 'open');
  } catch (err) {
    throw new LifeboatError('INPUT_INVALID', `cannot create ${file}: ${(err as Error).message}`, {
      cause: err,
      hints: [
        'a repair writes each snapshot and plan to a new file and never overwrites one: choose another path or move the old file aside',
      ],
    });
  }
  return {
    async write(value) {
      if (failed) throw failed;
      if (!out.write(`${JSON.stringify(value)}\n`)) await once(out, 'drain');
    },
    async close() {
      if (failed) throw failed;
      out.end();
      await once(out, 'finish');
    },
    async abort() {
      out.destroy();
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      rmSync(file, { force: true });
    },
  };
}
