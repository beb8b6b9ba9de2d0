import type { Logger } from 'pino';
import type { Agent } from 'undici';
import type { Config } from '../../config.js';
import { PixqError } from '../../errors.js';
import { abortError } from '../abort.js';
import { callRemove, probe, rembgAgent, RembgCallError, type RembgParams } from './client.js';
import { ServerPool, type ServerView } from './pool.js';

export type RembgConfig = Pick<Config, 'rembgServers' | 'rembgTimeoutMs' | 'rembgHealthMs' | 'rembgBreakerFailures'>;

export interface RemoteCall<T> {
  signal: AbortSignal;
  /** Most bytes an answer may have. */
  maxBytes: number;
  /** Vets an answer; what it throws counts as that server's failure, and the call moves on to another. */
  check(answer: Buffer): Promise<T>;
  log: Logger;
}

export interface RemoteResult<T> {
  value: T;
  server: string;
  /** Servers that failed this call before `server` answered. */
  failed: string[];
}

interface Failure {
  server: string;
  reason: string;
}

/**
 * The pool of remote rembg servers as one backend: each call takes the least busy server, and a server that
 * fails is left for the next one within the same call (each server at most once). Health checks run every
 * `PIXQ_REMBG_HEALTH_MS` from the first call on, so a process that never removes a background (an API
 * process) never probes.
 */
export class RembgBackend {
  private readonly pool: ServerPool;
  private readonly agent: Agent;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly config: RembgConfig) {
    this.pool = new ServerPool(config.rembgServers, config.rembgBreakerFailures);
    this.agent = rembgAgent(config.rembgTimeoutMs);
  }

  servers(): ServerView[] {
    return this.pool.view();
  }

  async remove<T>(
    image: { bytes: Buffer; contentType: string },
    params: RembgParams,
    call: RemoteCall<T>,
  ): Promise<RemoteResult<T>> {
    this.startHealthChecks();
    const tried = new Set<string>();
    const failures: Failure[] = [];
    for (;;) {
      const server = await this.pool.acquire(tried, call.signal);
      if (!server) throw noServerLeft(failures, this.pool.view());
      tried.add(server);
      const limits = { timeoutMs: this.config.rembgTimeoutMs, maxBytes: call.maxBytes, signal: call.signal };
      try {
        const answer = await callRemove(this.agent, server, image, params, limits);
        const value = await call.check(answer);
        this.pool.release(server, 'ok');
        return { value, server, failed: failures.map((f) => f.server) };
      } catch (err) {
        if (call.signal.aborted) {
          this.pool.release(server, 'neutral');
          throw abortError(call.signal);
        }
        if (err instanceof RembgCallError && err.kind === 'rejected') {
          this.pool.release(server, 'neutral');
          throw rembgRejected(server, err);
        }
        const reason = failureReason(err);
        this.pool.release(server, 'failed', reason);
        failures.push({ server, reason });
        call.log.warn({ server, reason }, 'rembg server failed a call; trying another');
      }
    }
  }

  /** Probes every server once, taking out those that fail and putting back those that answer. */
  checkHealth(): Promise<void> {
    this.checking ??= this.probeAll().finally(() => (this.checking = undefined));
    return this.checking;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.checking;
    // At shutdown no job is left waiting for an answer; a call still open is cut rather than waited for.
    await this.agent.destroy();
  }

  private async probeAll(): Promise<void> {
    const signal = new AbortController().signal;
    await Promise.all(
      this.pool.view().map(async ({ url }) => {
        try {
          await probe(this.agent, url, this.config.rembgTimeoutMs, signal);
          this.pool.markUp(url);
        } catch (err) {
          this.pool.markDown(url, `health check: ${failureReason(err)}`);
        }
      }),
    );
  }

  private startHealthChecks(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.checkHealth(), this.config.rembgHealthMs);
    this.timer.unref();
  }
}

function failureReason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function rembgRejected(server: string, err: RembgCallError): PixqError {
  return new PixqError('rembg_rejected', `rembg server ${server} ${err.message}`, {
    status: 422,
    details: { server, upstreamStatus: err.status },
    cause: err,
  });
}

/** Every server this call could use failed it, or none was in service to begin with: worth a later attempt. */
function noServerLeft(failures: Failure[], servers: ServerView[]): PixqError {
  if (failures.length > 0) {
    const list = failures.map((f) => `${f.server} ${f.reason}`).join('; ');
    return new PixqError('rembg_failed', `every rembg server tried failed: ${list}`, {
      status: 502,
      retryable: true,
      details: { failures },
    });
  }
  const out = servers.map((s) => `${s.url} (${s.outReason ?? 'out of service'})`).join('; ');
  return new PixqError('rembg_unavailable', `no rembg server is in service: ${out}`, {
    status: 503,
    retryable: true,
    details: { servers: servers.map((s) => ({ url: s.url, reason: s.outReason })) },
  });
}
