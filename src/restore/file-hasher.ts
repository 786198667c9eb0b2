// sha256 of an open file, computed on a worker thread: off the worker's
// event loop (heartbeats, other activities), with Node's OpenSSL (SHA-NI
// where the CPU has it, ~1.5 GB/s; coreutils' sha256sum does ~0.2 GB/s).
//
// The thread reads with positional reads (pread), so it never moves the
// descriptor's offset: the same descriptor can be the stdin of a child
// process reading it sequentially at the same time, and both see the same
// file, whatever is renamed in the repository meanwhile.
import { Worker } from 'node:worker_threads';

// Plain JavaScript, evaluated by the thread: no build step, no path to find
// in dist/ or under vitest.
const SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ id, fd }) => {
  try {
    const h = crypto.createHash('sha256');
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
    parentPort.postMessage({ id, sha256: h.digest('hex'), bytes: pos });
  } catch (e) {
    parentPort.postMessage({ id, error: String((e && e.message) || e) });
  }
});
`;

interface Reply {
  id: number;
  sha256?: string;
  bytes?: number;
  error?: string;
}

/** One thread; `hash` calls are answered in order. */
export class FileHasher {
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve: (r: { sha256: string; bytes: number }) => void; reject: (e: Error) => void }
  >();
  private nextId = 0;

  constructor() {
    this.worker = new Worker(SOURCE, { eval: true });
    this.worker.on('message', (r: Reply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.error !== undefined) p.reject(new Error(r.error));
      else p.resolve({ sha256: r.sha256!, bytes: r.bytes! });
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => this.failAll(new Error(`the hashing thread exited (code ${code})`)));
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** sha256 (hex) and length of the whole file behind `fd`, read from offset 0. */
  hash(fd: number): Promise<{ sha256: string; bytes: number }> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, fd });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
