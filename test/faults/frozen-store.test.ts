// Fault: an object store that accepts connections and then answers nothing
// (a SIGSTOPped MinIO, a hung gateway: the kernel still completes the TCP
// handshake). Every S3 request must end with REPOSITORY_UNREACHABLE naming the
// object once the socket has been silent for the repository's
// idleTimeoutSeconds (60 by default; 3 here, so that the SDK's three attempts
// take seconds, not minutes), never hang: with only the SDK's requestTimeout set, which merely
// logs a warning, archive-push, archive-get and `lifeboat check` all waited
// more than 15 minutes on a frozen MinIO, and PostgreSQL's archiver showed no
// failure at all.
//
// The silence is made by a gate in front of the shared MinIO that holds back
// one object's GETs (test/harness/faults-s3-gate.ts), so the shared store
// itself is never frozen; the held request is only released at the end.
import { afterAll, expect, it } from 'vitest';
import { LifeboatError } from '../../src/errors';
import { keys } from '../../src/repository/layout';
import { S3Repository } from '../../src/repository/s3';
import { sha256Hex } from '../../src/wal/compress';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startS3Gate } from '../harness/faults-s3-gate';
import { s3Env, s3RepoUrl, useS3Env } from '../harness/services';

const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

it(
  'fails a read from a store that never answers with REPOSITORY_UNREACHABLE naming the object, instead of hanging',
  { timeout: 600_000 },
  async () => {
    useS3Env();
    const url = s3RepoUrl('frozen');
    const segment = '000000010000000000000007';
    const key = keys.wal('frozen', segment);
    // Stored through the store itself, read through the gate that holds it back.
    const body = Buffer.from('a segment that is there, but never sent');
    await S3Repository.fromUrl(url).put(key, body, { sha256: sha256Hex(body) });
    const gate = await startS3Gate(s3Env().S3_ENDPOINT!);
    cleanups.push(() => gate.stop());
    gate.holdBackSegment(segment);
    process.env.FROZEN_STORE_ENDPOINT = gate.endpoint;
    const repo = S3Repository.fromUrl(url, { endpointEnv: 'FROZEN_STORE_ENDPOINT', idleTimeoutSeconds: 3 });

    const started = Date.now();
    const err = await repo.get(key).then(
      () => undefined,
      (e: unknown) => e,
    );
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(LifeboatError);
    expect((err as LifeboatError).code).toBe('REPOSITORY_UNREACHABLE');
    expect((err as LifeboatError).message).toContain(`GET ${key} in ${url} at ${gate.endpoint} failed: TimeoutError`);
    expect((err as LifeboatError).message).toContain('3000 ms of inactivity');
    // Every attempt of the SDK reached the store and was held: it retried, it did not give up at once.
    expect(gate.heldRequests()).toBeGreaterThan(1);
    process.stdout.write(
      `[fault frozen-store] a GET from a store that never answers failed after ${(took / 1000).toFixed(1)} s (${gate.heldRequests()} attempts held)\n`,
    );
  },
);
