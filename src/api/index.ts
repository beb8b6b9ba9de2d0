import type { Services } from '../services.js';

/** Placeholder until the HTTP API lands: starting the API part is refused clearly. */
export async function startApi(_services: Services): Promise<() => Promise<void>> {
  throw new Error('the HTTP API is not built yet; run `pixq worker`');
}
