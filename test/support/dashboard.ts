import path from 'node:path';
import { build } from 'vite';

/** Builds web/ into web/dist, so browser tests drive the pages as they are now, not as the last `npm install` built them. */
export async function buildDashboard(): Promise<void> {
  await build({ root: path.resolve('web'), logLevel: 'error' });
}
