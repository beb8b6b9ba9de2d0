import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';

/**
 * This machine has no container engine, so the container files are checked here instead: the compose file
 * parses, names only pixq commands that exist and a configuration pixq accepts; the Dockerfile copies files
 * that exist, runs as a non-root user and checks health on /readyz.
 */
const REPO = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(REPO, 'test/support/pixq-cli.ts');

/** The commands `pixq help` lists (the first word of each usage line). */
function cliCommands(): string[] {
  const usage = execFileSync(process.execPath, ['--import', 'tsx', CLI, 'help'], { encoding: 'utf8' });
  return [...usage.matchAll(/^ {2}([a-z]+)/gm)].map((m) => m[1]);
}

const compose = parse(readFileSync(path.join(REPO, 'compose.yaml'), 'utf8'));
const pixqServices = Object.entries<Record<string, unknown>>(compose.services).filter(([, s]) => s.build === '.');

describe('compose.yaml', () => {
  it('runs postgres, an S3 server, the API and workers', () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['postgres', 's3', 'api', 'worker']));
    expect(pixqServices.map(([name]) => name)).toEqual(expect.arrayContaining(['api', 'worker']));
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining(['pgdata', 's3data']));
  });

  it('names only pixq commands that exist', () => {
    const commands = cliCommands();
    expect(commands).toEqual(expect.arrayContaining(['start', 'api', 'worker', 'migrate']));
    for (const [name, service] of pixqServices) {
      const [command] = service.command as string[];
      expect(commands, `service ${name} runs "${command}"`).toContain(command);
    }
  });

  it('gives every pixq process a configuration pixq accepts, with the settings several hosts need', () => {
    const configSource = readFileSync(path.join(REPO, 'src/config.ts'), 'utf8');
    for (const [name, service] of pixqServices) {
      const env = service.environment as Record<string, string>;
      for (const variable of Object.keys(env).filter((v) => v.startsWith('PIXQ_'))) {
        expect(configSource, `${name}: ${variable} is read by src/config.ts`).toContain(`'${variable}'`);
      }
      const config = loadConfig(env);
      expect(config.databaseUrl, name).toMatch(/^postgres:\/\//);
      expect(config.signingSecret, name).toBeDefined();
    }
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(path.join(REPO, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const instructions = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
  const finalStage = instructions.slice(instructions.map((i) => i.keyword).lastIndexOf('FROM'));

  it('is multi-stage and installs only runtime dependencies into the image', () => {
    expect(instructions.filter((i) => i.keyword === 'FROM').length).toBeGreaterThanOrEqual(2);
    expect(text).toContain('npm ci --omit=dev');
    expect(finalStage.some((i) => i.keyword === 'RUN' && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it('copies only files that exist in the repository (or come from an earlier stage)', () => {
    for (const copy of instructions.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) expect(existsSync(path.join(REPO, source)), `COPY ${source}`).toBe(true);
    }
  });

  it('runs the image as a non-root user, checks /readyz, and starts a pixq command that exists', () => {
    const user = finalStage.filter((i) => i.keyword === 'USER').at(-1);
    expect(user?.args).toBeDefined();
    expect(user!.args).not.toMatch(/^(root|0)$/);
    expect(finalStage.find((i) => i.keyword === 'HEALTHCHECK')?.args).toContain('/readyz');
    expect(finalStage.find((i) => i.keyword === 'ENTRYPOINT')?.args).toBe('["node", "bin/pixq.js"]');
    const cmd = JSON.parse(finalStage.find((i) => i.keyword === 'CMD')!.args) as string[];
    expect(cliCommands()).toContain(cmd[0]);
  });

  it('creates every directory compose mounts a volume on, owned by the user it runs as', () => {
    // Docker creates a missing mount point as root, and a fresh named volume takes the owner of the image's
    // directory: without the directory in the image, the non-root user could not write into the volume.
    const user = finalStage.filter((i) => i.keyword === 'USER').at(-1)!.args;
    const runs = finalStage.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const mounts = pixqServices.flatMap(([, service]) =>
      ((service.volumes ?? []) as string[]).map((v) => v.split(':')[1]),
    );
    expect(mounts).toContain('/data/models');
    for (const mount of mounts) {
      const run = runs.find((r) => /\bmkdir -p\b/.test(r) && r.split(/\s+/).includes(mount));
      expect(run, `RUN mkdir -p ${mount}`).toBeDefined();
      const owner = new RegExp(`chown -R ${user}:${user} (\\S+)`).exec(run!);
      expect(owner !== null && mount.startsWith(owner[1]), `${run} gives ${mount} to ${user}`).toBe(true);
    }
  });

  it("sets the variables `npm start` sets before node (glibc's malloc settings)", () => {
    const start = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: { start: string } })
      .scripts.start;
    const assignments = [...start.matchAll(/(\w+=\S+)\s/g)].map((m) => m[1]);
    expect(assignments).toContain('MALLOC_ARENA_MAX=2');
    const env = finalStage.filter((i) => i.keyword === 'ENV').flatMap((i) => i.args.split(/\s+/));
    for (const assignment of assignments) expect(env, `Dockerfile ENV ${assignment}`).toContain(assignment);
  });
});
