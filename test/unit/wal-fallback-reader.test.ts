// The prefetcher's reader with --fallback-repo (src/wal/get-fallback.ts
// fallbackReader), over two file:// repositories: a segment the first holds
// damaged or lacks comes from the second, recorded with via: prefetcher in
// the data directory; the second is opened once for the prefetcher's life;
// the record keeps one line per file (the first fetcher's).
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { encodeWal, sha256Hex } from '../../src/wal/compress';
import { WAL_SOURCES_FILE, fallbackReader, readWalSources } from '../../src/wal/get-fallback';

const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-fallback-reader-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('serves from the next repository what the first holds damaged or lacks, records it for the evidence, and opens the next once', async () => {
  const firstUrl = `file://${path.join(root, 'first')}`;
  const secondUrl = `file://${path.join(root, 'second')}`;
  mkdirSync(path.join(root, 'first'));
  mkdirSync(path.join(root, 'second'));
  const first = await openRepository(firstUrl);
  const second = await openRepository(secondUrl);
  const segs = ['000000010000000000000001', '000000010000000000000002', '000000010000000000000003'];
  const content = (i: number) => Buffer.alloc(16 << 20, i + 1);
  for (const [i, seg] of segs.entries()) {
    const body = await encodeWal(seg, content(i));
    await second.put(keys.wal('c', seg), body, { sha256: sha256Hex(content(i)), ifAbsent: true });
    if (i < 2) await first.put(keys.wal('c', seg), body, { sha256: sha256Hex(content(i)), ifAbsent: true });
  }
  // The first's copy of segment 2 flipped; segment 3 it never had.
  const damagedFile = path.join(root, 'first', keys.wal('c', segs[1]!));
  const bytes = readFileSync(damagedFile);
  const at = bytes.length >> 1;
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(damagedFile, bytes);

  const dataDir = path.join(root, 'data');
  mkdirSync(dataDir);
  let opened = 0;
  const open = (url: string) => {
    opened++;
    return openRepository(url);
  };
  const reader = fallbackReader([secondUrl], open, dataDir);
  const got: Array<string | undefined> = [];
  for (const seg of segs) got.push((await reader.read(first, 'c', seg))?.sha256);
  reader.close();
  expect(got).toEqual(segs.map((_, i) => sha256Hex(content(i))));
  expect(opened).toBe(1);
  const sources = await readWalSources(dataDir);
  expect(sources).toEqual([
    {
      walFile: segs[1],
      servedBy: secondUrl,
      via: 'prefetcher',
      skipped: [
        {
          url: firstUrl,
          reason: expect.stringMatching(/cannot be decompressed|does not match its checksum/) as string,
        },
      ],
    },
    { walFile: segs[2], servedBy: secondUrl, via: 'prefetcher', skipped: [{ url: firstUrl, reason: 'not there' }] },
  ]);
  // restore_command fetching the same file again later (PostgreSQL asked before the spool had it): the first line stays.
  appendFileSync(
    path.join(dataDir, WAL_SOURCES_FILE),
    `${JSON.stringify({ walFile: segs[1], servedBy: secondUrl, skipped: [] })}\n`,
  );
  expect((await readWalSources(dataDir)).map((s) => [s.walFile, s.via])).toEqual([
    [segs[1], 'prefetcher'],
    [segs[2], 'prefetcher'],
  ]);
});
