// A pgBackRest stanza whose repository is S3 on a MinIO over TLS
// (./minio-tls.ts): repo1-type=s3, path-style URIs, the endpoint and port,
// and the test CA as repo1-storage-ca-file (certificate verification stays
// on; repo1-storage-verify-tls=n is never written). The S3 keys are in
// pgBackRest's own configuration file (mode 0600, the postgres OS user's):
// archive-push on the primary and archive-get in a restored copy read them
// there, as on a server. `variant` writes a copy of that file with some lines
// changed (another CA file, the keys left out for the environment to give).
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { chownToOsUser } from '../../src/dev/sandbox-pg';
import type { TlsMinio } from './minio-tls';
import { startPgBackRestPrimary, type PgBackRestStanza } from './pgbackrest';

export interface PgBackRestS3Stanza extends PgBackRestStanza {
  minio: TlsMinio;
  /** The prefix in the bucket (repo1-path). */
  repoPrefix: string;
  /**
   * A copy of the stanza's configuration file with `edit` applied, owned by
   * postgres with mode 0600; its path, for engine.configPath.
   */
  variant(name: string, edit: (lines: string[]) => string[]): string;
}

/** repo1-s3-key and repo1-s3-key-secret: the configuration lines that hold the keys. */
export const S3_KEY_LINE = /^repo1-s3-key(-secret)?=/;

export async function startPgBackRestS3Primary(minio: TlsMinio, stanza = 'lbs3'): Promise<PgBackRestS3Stanza> {
  const repoPrefix = `/stanzas-${process.pid}-${Date.now().toString(36)}`;
  const s = await startPgBackRestPrimary(stanza, {
    repo: [
      'repo1-type=s3',
      `repo1-s3-endpoint=${minio.host}`,
      'repo1-s3-uri-style=path',
      `repo1-storage-port=${minio.port}`,
      `repo1-storage-ca-file=${minio.ca.caFile}`,
      `repo1-s3-bucket=${minio.bucket}`,
      'repo1-s3-region=us-east-1',
      `repo1-s3-key=${minio.accessKey}`,
      `repo1-s3-key-secret=${minio.secretKey}`,
      `repo1-path=${repoPrefix}`,
    ],
    mode: 0o600,
  });
  const variant = (name: string, edit: (lines: string[]) => string[]): string => {
    const file = path.join(s.root, `${name}.conf`);
    writeFileSync(file, edit(readFileSync(s.config, 'utf8').split('\n')).join('\n'), { mode: 0o600 });
    chmodSync(file, 0o600);
    chownToOsUser(file, 'postgres');
    return file;
  };
  return { ...s, minio, repoPrefix, variant };
}
