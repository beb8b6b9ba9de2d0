import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { s3Client } from '../../src/blobs/index.js';
import type { S3Config } from '../../src/config.js';
import { tempDir } from './stores.js';

const S3RVER = path.resolve(import.meta.dirname, '../../node_modules/.bin/s3rver');

/** A real S3 server (s3rver) on loopback for one test file: its own directory, a free port, one bucket. */
export interface S3Server {
  endpoint: string;
  bucket: string;
  config: S3Config;
  /** What a pixq process needs to use the bucket: PIXQ_S3_* and the SDK's credentials. */
  env: Record<string, string>;
  /** Every object key in the bucket. */
  keys(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startS3Server(bucket = 'pixq-test'): Promise<S3Server> {
  const child = spawn(S3RVER, ['-d', tempDir(), '-a', '127.0.0.1', '-p', '0', '--configure-bucket', bucket], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.once('exit', (code) => reject(new Error(`s3rver exited ${code} before listening: ${stderr}`)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (match) resolve(Number(match[1]));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    PIXQ_S3_BUCKET: bucket,
    PIXQ_S3_ENDPOINT: endpoint,
    PIXQ_S3_FORCE_PATH_STYLE: '1',
    PIXQ_S3_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
  };
  // The SDK reads credentials from its standard chain; in this process that is the environment.
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const config: S3Config = { bucket, endpoint, region: 'us-east-1', forcePathStyle: true, prefix: '', presign: true };
  const client = s3Client(config);
  return {
    endpoint,
    bucket,
    config,
    env,
    async keys() {
      const { Contents } = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      return (Contents ?? []).map((o) => o.Key!).sort();
    },
    async stop() {
      client.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
