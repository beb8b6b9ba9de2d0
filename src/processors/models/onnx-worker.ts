import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { PixqError } from '../../errors.js';

/**
 * One ONNX session living in its own child process. onnxruntime-node's `run` (and model loading) block the calling
 * thread for the whole inference, about a second for a 1024 px model; on the main thread that would stall leases,
 * HTTP and abort handling. In a child process the main thread stays free and gives up on a run the moment a job is
 * aborted (onnxruntime cannot interrupt a run; the abandoned result is dropped when it arrives). A process rather
 * than a worker thread because only a process hands its memory back: glibc keeps the heap onnxruntime grew (about
 * 1 GB after a 1024 px ISNet) when a thread's session is released, while a process that exits returns all of it.
 *
 * Control messages travel over the IPC channel; tensor bytes over a separate raw pipe (fd 3), since Node's IPC
 * serialises a 12 MB tensor in hundreds of milliseconds and a pipe copies it in a few.
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

type ChildMessage =
  | ReadyMessage
  | { type: 'failed'; message: string }
  | { type: 'started'; id: number }
  /** The output's `bytes` follow on the data pipe. */
  | { type: 'result'; id: number; dims: number[]; bytes: number }
  | { type: 'error'; id: number; message: string };

// Plain JavaScript run with `node -e`: a .ts entry would not load without tsx's loader, and the compiled build has
// no separate .js asset to point at. The process exits when the parent goes away (its IPC channel closes).
const CHILD_SOURCE = `
const net = require('node:net');
const { ortPath, modelPath, sessionOptions } = JSON.parse(process.argv[1]);
const ort = require(ortPath);
const pipe = new net.Socket({ fd: 3, readable: true, writable: true });
const bytes = new ByteReader(pipe);
let session;
const message = (err) => String((err && err.message) || err);
process.on('disconnect', () => process.exit(0));
ort.InferenceSession.create(modelPath, sessionOptions).then(
  (s) => {
    session = s;
    process.send({ type: 'ready', inputNames: s.inputNames, outputNames: s.outputNames });
  },
  (err) => process.send({ type: 'failed', message: message(err) }, () => process.exit(1)),
);
process.on('message', async (msg) => {
  let total = 0;
  for (const f of msg.feeds) total += f.bytes;
  const data = await bytes.read(total);
  try {
    const feeds = {};
    let offset = 0;
    for (const f of msg.feeds) {
      feeds[f.name] = new ort.Tensor('float32', new Float32Array(data.buffer, offset, f.bytes / 4), f.dims);
      offset += f.bytes;
    }
    process.send({ type: 'started', id: msg.id });
    const output = (await session.run(feeds, [msg.fetch]))[msg.fetch];
    if (output.type !== 'float32') throw new Error('output ' + msg.fetch + ' is ' + output.type + ', expected float32');
    const out = output.data;
    pipe.write(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    process.send({ type: 'result', id: msg.id, dims: output.dims, bytes: out.byteLength });
  } catch (err) {
    process.send({ type: 'error', id: msg.id, message: message(err) });
  }
});
`;

/**
 * Reads exact byte counts off a stream, one request at a time, into a fresh unpooled buffer (offset 0, so a
 * Float32Array can view it). Its source is also evaluated in the child (`${ByteReader}` below).
 */
class ByteReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private pending: { n: number; resolve: (b: Buffer) => void } | undefined;

  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.have += chunk.length;
      this.deliver();
    });
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve) => {
      this.pending = { n, resolve };
      this.deliver();
    });
  }

  deliver(): void {
    const pending = this.pending;
    if (!pending || this.have < pending.n) return;
    this.pending = undefined;
    const out = Buffer.allocUnsafeSlow(pending.n);
    let offset = 0;
    while (offset < pending.n) {
      const chunk = this.chunks[0];
      const take = Math.min(chunk.length, pending.n - offset);
      chunk.copy(out, offset, 0, take);
      offset += take;
      if (take === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(take);
    }
    this.have -= pending.n;
    pending.resolve(out);
  }
}

/** The model's process died under a run: the job may succeed on a retry, with a fresh process. */
function modelCrashed(message: string): PixqError {
  return new PixqError('model_crashed', message, { retryable: true, status: 503 });
}

interface Job {
  id: number;
  feeds: Record<string, TensorData>;
  fetch: string;
  /** Set once the caller has its answer (result, error or abort); a late result is then dropped. */
  settled: boolean;
  /** Called when the child begins executing this run (it has left the queue and cannot be taken back). */
  onStart?: () => void;
  resolve: (t: TensorData) => void;
  reject: (err: unknown) => void;
  detach: () => void;
}

/**
 * Runs are handed to the child one at a time and queue here: a job aborted while waiting is simply taken out of
 * the queue and never starts.
 */
export class OnnxHost {
  readonly inputNames: string[];
  readonly outputNames: string[];
  private readonly child: ChildProcess;
  private readonly pipe: Socket;
  private readonly reader: ByteReader;
  /** Settles when the child process has exited, whether closed or crashed. */
  readonly exited: Promise<void>;
  private readonly queue: Job[] = [];
  private current: Job | undefined;
  private nextId = 1;
  private dead: Error | undefined;

  private constructor(child: ChildProcess, ready: ReadyMessage, exited: Promise<void>) {
    this.child = child;
    this.pipe = child.stdio[3] as Socket;
    this.reader = new ByteReader(this.pipe);
    this.exited = exited;
    this.inputNames = ready.inputNames;
    this.outputNames = ready.outputNames;
    child.on('message', (msg: ChildMessage) => void this.settle(msg));
    child.on('exit', (code, signal) =>
      this.fail(modelCrashed(`the model process exited (${signal ?? `code ${code}`})`)),
    );
    // Writing to a process that just died fails here; its exit event says what happened.
    const lost = (err: Error) => this.fail(modelCrashed(`lost the model process: ${err.message}`));
    child.on('error', lost);
    this.pipe.on('error', lost);
    this.unref();
  }

  /** Loads the model in a new process; rejects with onnxruntime's message if the file is not a usable model. */
  static open(modelPath: string, opts: OnnxHostOptions): Promise<OnnxHost> {
    const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
    // Under tsx and vitest, esbuild's keepNames puts `__name(...)` calls into the class's source.
    const source = `const __name = (target) => target;\n${ByteReader.toString()}\n${CHILD_SOURCE}`;
    const setup = JSON.stringify({ ortPath, modelPath, sessionOptions: sessionOptions(opts) });
    const child = spawn(process.execPath, ['-e', source, setup], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe', 'ipc'],
      env: childEnv(),
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      const onExit = (code: number | null, signal: string | null) =>
        reject(new Error(`the model process exited (${signal ?? `code ${code}`}) while loading ${modelPath}`));
      child.once('error', onError);
      child.once('exit', onExit);
      child.once('message', (msg: ChildMessage) => {
        child.off('error', onError);
        child.off('exit', onExit);
        if (msg.type === 'ready') return resolve(new OnnxHost(child, msg, exited));
        child.kill('SIGKILL');
        reject(new Error(msg.type === 'failed' ? msg.message : `unexpected ${msg.type} from the model process`));
      });
    });
  }

  /** The child's process id (it exits when the session is closed, e.g. after the idle time). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Runs queued or executing, including one whose caller has given up but that the child is still finishing. */
  get busy(): number {
    return this.queue.length + (this.current ? 1 : 0);
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  /**
   * Runs the model on `feeds` (whose bytes are copied to the child) and returns output `fetch`.
   * On abort, rejects at once with the signal's reason: a queued run never starts; a running one finishes in the
   * child (onnxruntime cannot interrupt it) and its result is dropped. `onStart` is told when the child begins
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
      const job: Job = {
        id: this.nextId++,
        feeds,
        fetch,
        settled: false,
        onStart,
        resolve,
        reject,
        detach: () => undefined,
      };
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

  /** Ends the child at once (a run in progress is of no use to anyone once the session is closed). */
  async close(): Promise<void> {
    if (!this.dead) this.fail(new Error('onnx session closed'));
    if (this.child.exitCode === null && this.child.signalCode === null) {
      // An idle child is unref'd; awaiting its exit must keep this process alive until the exit arrives.
      this.child.ref();
      this.child.kill('SIGKILL');
    }
    await this.exited;
  }

  private pump(): void {
    if (this.current || this.dead) return;
    const job = this.queue.shift();
    if (!job) return this.unref();
    this.current = job;
    // Keep the parent alive while a run is out: a caller awaiting it is not enough on its own.
    this.ref();
    const feeds = Object.entries(job.feeds).map(([name, t]) => ({ name, dims: t.dims, bytes: t.data.byteLength }));
    this.child.send({ type: 'run', id: job.id, feeds, fetch: job.fetch });
    for (const t of Object.values(job.feeds))
      this.pipe.write(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }

  private async settle(msg: ChildMessage): Promise<void> {
    if (msg.type !== 'result' && msg.type !== 'error' && msg.type !== 'started') return;
    const job = this.current;
    if (!job || job.id !== msg.id) return;
    if (msg.type === 'started') return void (job.settled || job.onStart?.());
    // The output's bytes are read off the pipe even for an abandoned run, so that the next run's start there.
    const data = msg.type === 'result' ? await this.reader.read(msg.bytes) : undefined;
    if (this.current !== job) return;
    this.current = undefined;
    const outcome =
      msg.type === 'result'
        ? { data: new Float32Array(data!.buffer, 0, msg.bytes / 4), dims: msg.dims }
        : new Error(`inference failed: ${msg.message}`);
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

  /** An idle session must not keep the parent running: the process, its channel and the pipe are unref'd. */
  private unref(): void {
    this.child.unref();
    this.child.channel?.unref();
    this.pipe.unref();
  }

  private ref(): void {
    this.child.ref();
    this.child.channel?.ref();
    this.pipe.ref();
  }
}

/**
 * Variables the model process never gets: pixq's own configuration (the admin key, the signing secret), the
 * store's address and credentials, cloud and API keys, and anything named like a secret.
 */
const SECRET_NAMES = /^(PIXQ_|DATABASE_URL$|PG[A-Z]|AWS_|ANTHROPIC_)|KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL/i;

/**
 * The environment of the model process: the parent's without its secrets (see SECRET_NAMES), so none reach a
 * process that parses model files; without loader hooks (tsx, vitest: NODE_OPTIONS), which its plain JavaScript
 * does not need; and without a fixed glibc mmap threshold: `npm start` fixes one for the server (its image
 * buffers then go back to the system when freed), but in the model process it makes every run fault in fresh
 * pages, 18 % slower for the int8 model (727 vs 610 ms a run); there glibc's own threshold is better, and the
 * memory goes back when the process exits after its idle time.
 */
function childEnv(): NodeJS.ProcessEnv {
  const dropped = (name: string) =>
    name === 'NODE_OPTIONS' || name === 'MALLOC_MMAP_THRESHOLD_' || SECRET_NAMES.test(name);
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !dropped(name)));
}

function sessionOptions(opts: OnnxHostOptions) {
  const providers = opts.provider === 'cpu' ? ['cpu'] : [opts.provider, 'cpu'];
  return {
    executionProviders: providers,
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // The arena keeps every intermediate of the largest run: measured peak RSS 2.5 GB with it, 1.1 GB without,
    // at the same speed, for the 1024 px ISNet. The memory pattern allocates one block for all of a run's
    // intermediates at once: 1137 MB peak with it, 874 MB without.
    enableCpuMemArena: false,
    enableMemPattern: false,
  };
}
