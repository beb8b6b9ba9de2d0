import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PixqError } from '../../errors.js';
import { GROUP_READABLE } from '../../file-modes.js';

/** A model that cannot be had: permanent for the job, since retrying changes nothing until an operator acts. */
export function modelUnavailable(message: string, details: Record<string, unknown>, cause?: unknown): PixqError {
  return new PixqError('model_unavailable', message, { retryable: false, status: 503, details, cause });
}

export async function fileSize(file: string): Promise<number | undefined> {
  try {
    const info = await stat(file);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes a file so that readers see either nothing or the whole file: a unique temporary name in the same
 * directory, then a rename. Two processes racing produce the same bytes, so the last rename wins harmlessly.
 */
export async function writeFileAtomic(file: string, data: Buffer | AsyncIterable<Buffer>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, data, { mode: GROUP_READABLE });
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
