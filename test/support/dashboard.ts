import path from 'node:path';
import { build } from 'vite';

/**
 * Builds web/ into web/dist, so browser tests drive the pages as they are now, not as the last `npm install`
 * built them. Vite honours an existing NODE_ENV, and vitest sets it to `test`, which would give React's
 * development build (StrictMode's doubled effects and requests): build what users get.
 */
export async function buildDashboard(): Promise<void> {
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ root: path.resolve('web'), logLevel: 'error', mode: 'production' });
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
}
