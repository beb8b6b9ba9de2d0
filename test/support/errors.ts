import { expect } from 'vitest';
import { PixqError } from '../../src/errors.js';

/** Awaits a promise that must reject with a PixqError, and returns that error for further checks. */
export async function rejection(promise: Promise<unknown>): Promise<PixqError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PixqError);
  return err as PixqError;
}
