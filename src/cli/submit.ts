import { openAsBlob } from 'node:fs';
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PixqApiError, PixqClient, type Batch, type Job } from '@pixq/client';
import { glob } from 'tinyglobby';

/**
 * `pixq submit`: sends local images to a pixq server in bulk requests, follows each batch live, and writes
 * the outputs next to their inputs as `<file name>.pixq.<ext>` (`a.jpg` → `a.jpg.pixq.png`; the whole name, so
 * `a.jpg` and `a.png` do not collide), or into --out. Outputs are written under a
 * temporary name and renamed when complete, so a second run skips exactly the inputs that are done.
 */
export const SUBMIT_USAGE = `pixq submit <files|folders|globs> --type T [--options JSON] [--out DIR]
                      [--publish PREFIX] [--server URL] [--key K] [--concurrency N]
                        send images to a pixq server (PIXQ_URL, PIXQ_KEY) and download the outputs;
                        --publish keeps each output as an asset at PREFIX<job id> and prints its URL`;

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.avif', '.tif', '.tiff', '.gif']);
const OUTPUT_MARK = '.pixq.';
const EXTENSION_OF: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/webp': 'webp',
  'image/avif': 'avif',
};

interface Failure {
  file: string;
  code: string;
  message: string;
}

interface Run {
  client: PixqClient;
  type: string;
  options: Record<string, unknown> | undefined;
  outDir: string | undefined;
  publish: { prefix: string } | undefined;
  /** Each published output's permanent URL, by input file. */
  published: [string, string][];
  board: ProgressBoard;
  succeeded: number;
  failures: Failure[];
}

export async function submitCommand(args: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      type: { type: 'string' },
      options: { type: 'string' },
      out: { type: 'string' },
      publish: { type: 'string' },
      server: { type: 'string' },
      key: { type: 'string' },
      concurrency: { type: 'string', default: '2' },
    },
  });
  const server = values.server ?? process.env.PIXQ_URL;
  const key = values.key ?? process.env.PIXQ_KEY;
  const concurrency = Number(values.concurrency);
  if (
    !values.type ||
    positionals.length === 0 ||
    !server ||
    !key ||
    !(Number.isInteger(concurrency) && concurrency >= 1)
  ) {
    console.error(
      `usage: ${SUBMIT_USAGE}\n(--server/PIXQ_URL and --key/PIXQ_KEY are required; --concurrency is a whole number >= 1)`,
    );
    process.exitCode = 2;
    return;
  }
  const started = Date.now();
  const client = new PixqClient({
    baseUrl: server,
    apiKey: key,
    // Polite on 429: wait what Retry-After says (rate windows may be an hour), and say so.
    retry: {
      attempts: 20,
      maxDelayMs: 3_600_000,
      onRetry: ({ error, delayMs }) =>
        console.log(`${error.code}: waiting ${Math.ceil(delayMs / 1000)} s as the server asks`),
    },
  });
  const run: Run = {
    client,
    type: values.type,
    options: values.options === undefined ? undefined : parseOptions(values.options),
    outDir: values.out && path.resolve(values.out),
    publish: values.publish === undefined ? undefined : { prefix: values.publish },
    published: [],
    board: new ProgressBoard(process.stdout),
    succeeded: 0,
    failures: [],
  };
  const inputs = await expandInputs(positionals);
  const pending: string[] = [];
  for (const file of inputs) if (!(await hasOutput(file, run.outDir))) pending.push(file);
  const skipped = inputs.length - pending.length;
  if (skipped > 0) console.log(`skipping ${skipped} of ${inputs.length} inputs: their outputs exist`);
  if (run.outDir) await mkdir(run.outDir, { recursive: true });

  const { limits } = await client.me();
  const batches: string[][] = [];
  for (const file of pending) {
    if ((await stat(file)).size > limits.maxUploadBytes) {
      run.failures.push({
        file,
        code: 'payload_too_large',
        message: `larger than the server's ${limits.maxUploadBytes} bytes per file`,
      });
      continue;
    }
    if (batches.length === 0 || batches[batches.length - 1].length >= limits.maxBulkFiles) batches.push([]);
    batches[batches.length - 1].push(file);
  }
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, batches.length) }, async () => {
    while (next < batches.length) {
      const index = next++;
      await runBatch(run, batches[index], `batch ${index + 1}/${batches.length}`);
    }
  });
  await Promise.all(lanes);
  run.board.close();

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `done in ${seconds} s: ${run.succeeded} succeeded, ${run.failures.length} failed, ${skipped} skipped (outputs exist)`,
  );
  for (const [file, url] of run.published) console.log(`  published: ${file}: ${url}`);
  for (const f of run.failures) console.log(`  failed: ${f.file}: ${f.code} (${f.message})`);
  if (run.failures.length > 0) process.exitCode = 1;
}

function parseOptions(raw: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(raw);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new Error(`--options must be a JSON object, got ${raw}`);
}

/** Files as given, a folder's images (not its subfolders), and glob matches; never an earlier run's outputs. */
async function expandInputs(args: string[]): Promise<string[]> {
  const files = new Set<string>();
  for (const arg of args) {
    const info = await stat(arg).catch(() => undefined);
    if (info?.isFile()) files.add(path.resolve(arg));
    else if (info?.isDirectory()) {
      for (const name of (await readdir(arg)).sort()) {
        if (IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase())) files.add(path.resolve(arg, name));
      }
    } else {
      const matches = await glob(arg, { absolute: true, onlyFiles: true });
      if (matches.length === 0) throw new Error(`${arg}: no such file, folder or matching file`);
      for (const match of matches.sort()) files.add(match);
    }
  }
  return [...files].filter((file) => !path.basename(file).includes(OUTPUT_MARK));
}

function outputBase(file: string, outDir: string | undefined): string {
  return path.join(outDir ?? path.dirname(file), `${path.basename(file)}${OUTPUT_MARK}`);
}

async function hasOutput(file: string, outDir: string | undefined): Promise<boolean> {
  const base = outputBase(file, outDir);
  const names = await readdir(path.dirname(base)).catch(() => [] as string[]);
  return names.some((name) => name.startsWith(path.basename(base)) && !name.endsWith('.part'));
}

/** One bulk request, followed to its end; a request refused for one bad file is sent again file by file. */
async function runBatch(run: Run, files: string[], label: string) {
  let accepted;
  try {
    const blobs = await Promise.all(files.map(async (file) => new File([await openAsBlob(file)], path.basename(file))));
    accepted = await run.client.submitBulk({
      files: blobs,
      type: run.type,
      options: run.options,
      publish: run.publish,
    });
  } catch (err) {
    if (!(err instanceof PixqApiError) || ![413, 415, 422].includes(err.status) || files.length === 1) {
      for (const file of files) run.failures.push(failureOf(file, err));
      return;
    }
    for (const file of files) await runBatch(run, [file], `${label} (${path.basename(file)})`);
    return;
  }
  const fileOf = new Map(accepted.jobIds.map((id, i) => [id, files[i]]));
  const line = run.board.add(label);
  const began = Date.now();
  await run.client.waitBatch(accepted.batchId, { onProgress: (batch) => line(describe(batch, began)) });
  for await (const job of run.client.jobs({ batchId: accepted.batchId, limit: 100 })) {
    const file = fileOf.get(job.id)!;
    if (job.state === 'succeeded') {
      const asset = job.outputs[0]?.asset;
      if (asset) run.published.push([file, asset.url]);
      await writeOutputs(run, job, file).then(
        () => run.succeeded++,
        (err: unknown) => run.failures.push(failureOf(file, err)),
      );
    } else {
      run.failures.push({
        file,
        code: job.error?.code ?? job.state,
        message: job.error?.message ?? `the job ended ${job.state}`,
      });
    }
  }
  line(describe(await run.client.batch(accepted.batchId), began), true);
}

async function writeOutputs(run: Run, job: Job, file: string) {
  const base = outputBase(file, run.outDir);
  for (const [index, output] of job.outputs.entries()) {
    const bytes = new Uint8Array(await (await run.client.download(job.id, index)).arrayBuffer());
    const target = `${base}${index === 0 ? '' : `${index}.`}${EXTENSION_OF[output.contentType] ?? 'bin'}`;
    await writeFile(`${target}.part`, bytes);
    await rename(`${target}.part`, target);
  }
}

function failureOf(file: string, err: unknown): Failure {
  if (err instanceof PixqApiError) return { file, code: err.code, message: err.message };
  return { file, code: 'client_error', message: err instanceof Error ? err.message : String(err) };
}

function describe(batch: Batch, began: number): string {
  const done = batch.counts.succeeded ?? 0;
  const failed = (batch.counts.failed ?? 0) + (batch.counts.cancelled ?? 0);
  const finished = done + failed;
  const elapsed = (Date.now() - began) / 1000;
  const rate = elapsed > 0 ? finished / elapsed : 0;
  const eta = rate > 0 ? `${Math.ceil((batch.total - finished) / rate)} s` : '?';
  const width = 24;
  const filled = Math.round((batch.percent / 100) * width);
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
  return `[${bar}] ${batch.percent.toFixed(0).padStart(3)}%  ${done}/${batch.total} done, ${failed} failed, ${rate.toFixed(1)}/s, ETA ${eta}`;
}

/**
 * One line per batch: redrawn in place on a terminal; on anything else (a log, a pipe) a plain line when
 * a batch's figures change, at most every two seconds, and always its last one.
 */
class ProgressBoard {
  private readonly lines: string[] = [];
  private drawn = 0;

  constructor(private readonly out: NodeJS.WriteStream) {}

  add(label: string): (text: string, last?: boolean) => void {
    const index = this.lines.push(`${label} starting`) - 1;
    let printedAt = 0;
    let printed = '';
    return (text, last = false) => {
      const line = `${label} ${text}`;
      this.lines[index] = line;
      if (this.out.isTTY) return this.redraw();
      if (line === printed || (!last && Date.now() - printedAt < 2000)) return;
      printedAt = Date.now();
      printed = line;
      this.out.write(`${line}\n`);
    };
  }

  close() {
    if (this.out.isTTY) this.redraw();
  }

  private redraw() {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A`);
    for (const line of this.lines) this.out.write(`\x1b[2K${line}\n`);
    this.drawn = this.lines.length;
  }
}
