import type { Services } from '../services.js';
import { buildServer } from './server.js';

export { buildServer } from './server.js';

/** Starts the API on PORT/HOST; the returned function stops accepting requests and closes it. */
export async function startApi(services: Services): Promise<() => Promise<void>> {
  const app = await buildServer(services);
  const address = await app.listen({ port: services.config.port, host: services.config.host });
  services.log.info({ address }, 'API listening');
  return () => app.close();
}
