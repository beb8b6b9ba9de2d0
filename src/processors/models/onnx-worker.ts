import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * One ONNX session living in its own worker thread. onnxruntime-node's `run` (and model loading) block the calling
 * thread for the whole inference, seconds for a 1024 px model; on the main thread that would stall leases, HTTP
 * and abort handling. In a worker, the main thread stays free and can give up on a run the moment a job is aborted
 * (onnxruntime cannot interrupt a run; the abandoned result is dropped when it arrives).
 */
export interface TensorData {
  data: Float32Array;
  dims: number[];
}

export interface OnnxHostOptions {
  provider: string;
  threads: number;
}

interface ReadyMessage {
  type: 'ready';
  inputNames: string[];
  outputNames: string[];
}

type WorkerMessage =
  | ReadyMessage
  | { type: 'failed'; message: string }
  | { type: 'started'; id: number }
  | { type: 'result'; id: number; data: Float32Array; dims: number[] }
  | { type: 'error'; id: number; message: string };

// Plain JavaScript evaluated in the worker: a .ts worker file would not load under tsx or vitest on Node 20,
// whose loader hooks do not reach worker threads, and the compiled build has no separate .js asset to point at.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
let session;
const message = (err) => String((err && err.message) || err);
ort.InferenceSession.create(workerData.modelPath, workerData.sessionOptions).then(
  (s) => {
    session = s;
    parentPort.postMessage({ type: 'ready', inputNames: s.inputNames, outputNames: s.outputNames });
  },
  (err) => parentPort.postMessage({ type: 'failed', message: message(err) }),
);
parentPort.on('message', async (msg) => {
  if (msg.type === 'close') {
    if (session) await session.release();
    parentPort.close();
    return;
  }
  try {
    const feeds = {};
    for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
    parentPort.postMessage({ type: 'started', id: msg.id });
    const output = (await session.run(feeds, [msg.fetch]))[msg.fetch];
    if (output.type !== 'float32') throw new Error('output ' + msg.fetch + ' is ' + output.type + ', expected float32');
    const data = new Float32Array(output.data);
    parentPort.postMessage({ type: 'result', id: msg.id, data, dims: output.dims }, [data.buffer]);
  } catch (err) {
    parentPort.postMessage({ type: 'error', id: msg.id, message: message(err) });
  }
});
`;

interface Job {
  id: number;
  feeds: Record<string, TensorData>;
  fetch: string;
  /** Set once the caller has its answer (result, error or abort); a late result is then dropped. */
  settled: boolean;
  /** Called when the worker begins executing this run (it has left the queue and cannot be taken back). */
  onStart?: () => void;
  resolve: (t: TensorData) => void;
  reject: (err: unknown) => void;
  detach: () => void;
}

/**
 * Runs are handed to the worker one at a time and queue here, not in the worker's message port: a job aborted
 * while waiting is simply taken out of the queue and never starts.
 */
export class OnnxHost {
  readonly inputNames: string[];
  readonly outputNames: string[];
  private readonly worker: Worker;
  private readonly queue: Job[] = [];
  private current: Job | undefined;
  private nextId = 1;
  private dead: Error | undefined;

  private constructor(worker: Worker, ready: ReadyMessage) {
    this.worker = worker;
    this.inputNames = ready.inputNames;
    this.outputNames = ready.outputNames;
    worker.on('message', (msg: WorkerMessage) => this.settle(msg));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`onnx worker exited with code ${code}`)));
    worker.unref();
  }

  /** Loads the model in a new worker; rejects with onnxruntime's message if the file is not a usable model. */
  static open(modelPath: string, opts: OnnxHostOptions): Promise<OnnxHost> {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        ortPath: createRequire(import.meta.url).resolve('onnxruntime-node'),
        modelPath,
        sessionOptions: sessionOptions(opts),
      },
    });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      const onExit = (code: number) => reject(new Error(`onnx worker exited with code ${code} while loading ${modelPath}`));
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.once('message', (msg: WorkerMessage) => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        if (msg.type === 'ready') return resolve(new OnnxHost(worker, msg));
        void worker.terminate();
        reject(new Error(msg.type === 'failed' ? msg.message : `unexpected ${msg.type} from onnx worker`));
      });
    });
  }

  /** Runs queued or executing, including one whose caller has given up but that the worker is still finishing. */
  get busy(): number {
    return this.queue.length + (this.current ? 1 : 0);
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  /**
   * Runs the model on `feeds` (whose buffers are handed over to the worker) and returns output `fetch`.
   * On abort, rejects at once with the signal's reason: a queued run never starts; a running one finishes in the
   * worker (onnxruntime cannot interrupt it) and its result is dropped. `onStart` is told when the worker begins
   * executing the run.
   */
  run(
    feeds: Record<string, TensorData>,
    fetch: string,
    signal?: AbortSignal,
    onStart?: () => void,
  ): Promise<TensorData> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<TensorData>((resolve, reject) => {
      const job: Job = { id: this.nextId++, feeds, fetch, settled: false, onStart, resolve, reject, detach: () => undefined };
      if (signal) {
        const onAbort = () => {
          if (job.settled) return;
          job.settled = true;
          const queued = this.queue.indexOf(job);
          if (queued >= 0) this.queue.splice(queued, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        job.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.queue.push(job);
      this.pump();
    });
  }

  async close(): Promise<void> {
    if (this.dead) return;
    this.fail(new Error('onnx session closed'));
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.postMessage({ type: 'close' });
    // A run in progress cannot be interrupted; do not wait for it longer than a few seconds.
    const timer = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }

  private pump(): void {
    if (this.current || this.dead) return;
    const job = this.queue.shift();
    if (!job) {
      this.worker.unref();
      return;
    }
    this.current = job;
    // Keep the process alive while a run is out: a caller awaiting it is not enough on its own.
    this.worker.ref();
    const transfer = Object.values(job.feeds).map((t) => t.data.buffer as ArrayBuffer);
    this.worker.postMessage({ type: 'run', id: job.id, feeds: job.feeds, fetch: job.fetch }, transfer);
  }

  private settle(msg: WorkerMessage): void {
    if (msg.type !== 'result' && msg.type !== 'error' && msg.type !== 'started') return;
    const job = this.current;
    if (!job || job.id !== msg.id) return;
    if (msg.type === 'started') return void (job.settled || job.onStart?.());
    this.current = undefined;
    const outcome = msg.type === 'result' ? { data: msg.data, dims: msg.dims } : new Error(`inference failed: ${msg.message}`);
    this.finish(job, outcome);
    this.pump();
  }

  private finish(job: Job, outcome: TensorData | Error): void {
    job.detach();
    if (job.settled) return;
    job.settled = true;
    if (outcome instanceof Error) job.reject(outcome);
    else job.resolve(outcome);
  }

  private fail(err: Error): void {
    this.dead ??= err;
    const jobs = [...this.queue, ...(this.current ? [this.current] : [])];
    this.queue.length = 0;
    this.current = undefined;
    for (const job of jobs) this.finish(job, err);
  }
}

function sessionOptions(opts: OnnxHostOptions) {
  const providers = opts.provider === 'cpu' ? ['cpu'] : [opts.provider, 'cpu'];
  return {
    executionProviders: providers,
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // The arena keeps every intermediate of the largest run: measured peak RSS 2.5 GB with it, 1.1 GB without,
    // at the same speed, for the 1024 px ISNet.
    enableCpuMemArena: false,
  };
}

