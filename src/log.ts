import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout, one logger per process; components take children of it. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid } });
}
