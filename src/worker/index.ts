export { Worker, type WorkerOptions } from './worker.js';
export { startMaintainer } from './maintainer.js';
export { blobInputLoader } from './load-input.js';
