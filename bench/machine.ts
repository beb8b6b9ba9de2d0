import { readFileSync } from 'node:fs';
import os from 'node:os';

/** The CPU features int8 inference depends on: onnxruntime's int8 kernels use VNNI (or AMX) dot products when present. */
const INT8_FLAGS = ['avx512_vnni', 'avx_vnni', 'amx_int8'];

/**
 * The machine a bench ran on, for its header: cores, CPU model and its int8 features. Machines of one kind differ
 * (one measured 3x faster than another), so figures from different CPUs are not comparable.
 */
export function describeMachine(): string {
  const flags = cpuFlags();
  const int8 = flags ? INT8_FLAGS.filter((f) => flags.has(f)).join(', ') || 'no VNNI' : 'CPU flags unknown';
  return `${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}; ${int8})`;
}

function cpuFlags(): Set<string> | undefined {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    return line
      ? new Set(
          line
            .slice(line.indexOf(':') + 1)
            .trim()
            .split(/\s+/),
        )
      : undefined;
  } catch {
    return undefined;
  }
}
