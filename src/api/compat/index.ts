import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { CompatApi } from '../../config.js';
import type { ApiDeps } from '../deps.js';
import { imageQueueRoutes } from './image-queue.js';
import { queueRoutes } from './queue.js';
import { rembgRoutes } from './rembg.js';
import { removeBgRoutes } from './removebg.js';
import { scanRoutes } from './scans.js';

/**
 * The compatibility APIs, each an encapsulated plugin under its own prefix, served as PIXQ_COMPAT says.
 * Adding one is a name in COMPAT_APIS (src/config.ts), a file here and a line below.
 */
const PLUGINS: Record<CompatApi, { prefix: string; routes: (deps: ApiDeps) => FastifyPluginAsync }> = {
  'image-queue': { prefix: '/api', routes: imageQueueRoutes },
  queue: { prefix: '', routes: queueRoutes },
  rembg: { prefix: '/api', routes: rembgRoutes },
  removebg: { prefix: '/v1.0', routes: removeBgRoutes },
  scans: { prefix: '', routes: scanRoutes },
};

export async function registerCompat(app: FastifyInstance, deps: ApiDeps) {
  for (const name of deps.config.compat) {
    const plugin = PLUGINS[name];
    await app.register(plugin.routes(deps), { prefix: plugin.prefix });
  }
}
