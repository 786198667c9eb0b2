// What a test gets from the shared services started in global-setup.ts.
import { inject } from 'vitest';

export function temporalAddress(): string {
  return inject('temporalAddress');
}

/** Environment a process needs to reach the test MinIO as an S3 store. */
export function s3Env(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: inject('s3AccessKey'),
    AWS_SECRET_ACCESS_KEY: inject('s3SecretKey'),
    AWS_REGION: 'us-east-1',
    S3_ENDPOINT: inject('s3Endpoint'),
  };
}

/** A fresh s3:// repository URL under the test bucket, unique per call. */
export function s3RepoUrl(label: string): string {
  return `s3://${inject('s3Bucket')}/${label}-${process.pid}-${Date.now().toString(36)}`;
}

/** Sets the S3 variables in this process (for code under test that reads the environment). */
export function useS3Env(): void {
  Object.assign(process.env, s3Env());
}

export function artifactsDir(): string {
  return inject('artifactsDir');
}
