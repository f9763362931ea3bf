/**
 * The TypeScript SDK: `new Pyro().run({...})`, `pyro.workspaces.*`,
 * `pyro.environments.*`, `pyro.hosts.*`, `pyro.doctor()`, `pyro.prepare()`.
 * Results are the same snake_case payloads `--json` prints and MCP returns.
 */
import path from "node:path";
import type {
  ConnectOptions,
  ConnectResult,
  PrintConfigOptions,
  PrintedConfig,
} from "../chat-hosts/connect.js";
import type { HostDoctorOptions, HostDoctorReport } from "../chat-hosts/doctor.js";
import type { ConnectableHostId, HostId } from "../chat-hosts/hosts.js";
import { ensurePrivateDir, resolvePaths, type PyroPaths } from "../config/paths.js";
import { runDoctor, type DoctorOptions, type DoctorReport } from "../daily-loop/doctor.js";
import { prepare, type PrepareOptions, type PrepareResult } from "../daily-loop/prepare.js";
import { pruneCaches } from "../daily-loop/prune.js";
import { EnvironmentCache } from "../environments/cache.js";
import {
  inspectEnvironment,
  describeEnvironment,
  listEnvironments,
  pullEnvironment,
  type EnvironmentInfo,
  type EnvironmentInspection,
  type PruneResult,
  type PullResult,
} from "../environments/service.js";
import { installRequirements, type SetupResult } from "../host/requirements.js";
import { DEFAULTS } from "../limits.js";
import { runOnce, type RunOptions, type RunResult } from "../run/run.js";
import { silentProgress, type ProgressFn } from "../util/progress.js";
import { WorkspaceContext } from "../workspaces/context.js";
import {
  projectCheck,
  resolveProject,
  type ProjectOptions,
  type ProjectSource,
} from "./project.js";
import { Workspaces } from "./workspaces.js";

export interface PyroOptions {
  /** State directory; defaults to $PYRO_HOME, else the XDG directories. */
  home?: string;
  /** Called with human progress messages during long work (builds, boots). */
  progress?: ProgressFn;
  /** Most VMs running at once (default 4, or $PYRO_MAX_RUNNING). */
  maxRunning?: number;
}

export interface Environments {
  list(): Promise<EnvironmentInfo[]>;
  /** One environment: whether it is installed (a create or run would build it first otherwise). */
  status(name: string): Promise<EnvironmentInfo>;
  pull(name: string, options?: { force?: boolean }): Promise<PullResult>;
  inspect(name: string): Promise<EnvironmentInspection>;
  prune(options?: { all?: boolean }): Promise<PruneResult>;
}

/** Chat-host onramps (contract §7): register pyro with a host, print its config, check and repair it. */
export interface ChatHosts {
  connect(host: ConnectableHostId, options?: ConnectOptions): Promise<ConnectResult>;
  repair(host: ConnectableHostId, options?: { name?: string }): Promise<ConnectResult>;
  printConfig(host: HostId, options?: PrintConfigOptions): Promise<PrintedConfig>;
  /** Write the config into FILE (new, or an existing file with only pyro's entry changed). */
  writeConfig(host: HostId, file: string, options?: PrintConfigOptions): Promise<PrintedConfig>;
  doctor(options?: Omit<HostDoctorOptions, "env">): Promise<HostDoctorReport>;
}

export class Pyro {
  /** Where pyro keeps its state and caches. */
  readonly home: { data: string; cache: string };
  readonly environments: Environments;
  /** Persistent workspaces (contract §4). */
  readonly workspaces: Workspaces;
  readonly hosts: ChatHosts;
  readonly #paths: PyroPaths;
  readonly #workspaces: WorkspaceContext;

  constructor(options: PyroOptions = {}) {
    const env = options.home ? { ...process.env, PYRO_HOME: options.home } : process.env;
    const paths = resolvePaths(env);
    this.#paths = paths;
    this.home = { data: paths.data, cache: paths.cache };
    ensurePrivateDir(paths.data);
    ensurePrivateDir(paths.cache);
    const cache = new EnvironmentCache(paths);
    const progress = options.progress ?? silentProgress;
    const envLimit = Number(process.env.PYRO_MAX_RUNNING);
    const maxRunning =
      options.maxRunning ??
      (Number.isInteger(envLimit) && envLimit > 0 ? envLimit : DEFAULTS.maxRunning);
    this.#workspaces = new WorkspaceContext(paths, cache, progress, maxRunning);
    this.workspaces = new Workspaces(this.#workspaces);
    const store = this.#workspaces.store;
    this.environments = {
      list: () => listEnvironments(cache),
      status: (name) => describeEnvironment(cache, name),
      pull: (name, opts) => pullEnvironment(cache, name, progress, opts),
      inspect: (name) => inspectEnvironment(cache, name),
      prune: (opts) => pruneCaches(paths, cache, store, opts),
    };
    // Loaded on use: the config parsers and the MCP client stay out of every other command's start.
    const onramps = () => import("../chat-hosts/connect.js");
    this.hosts = {
      connect: async (host, opts) => (await onramps()).connectHost(host, opts, env),
      repair: async (host, opts) => (await onramps()).repairHost(host, opts, env),
      printConfig: async (host, opts) => (await onramps()).printConfig(host, opts, env),
      writeConfig: async (host, file, opts) =>
        (await onramps()).writeConfigTo(host, file, opts, env),
      doctor: async (opts) =>
        (await import("../chat-hosts/doctor.js")).hostDoctor({ ...opts, env }),
    };
  }

  /** Boot a fresh VM, run one command, delete the VM. */
  run(options: RunOptions): Promise<RunResult> {
    return runOnce(this.#workspaces.launch, options);
  }

  /** Check the host, the cache and a real boot; plus what a server started in `cwd` would seed from. */
  async doctor(options: DoctorOptions & { cwd?: string } = {}): Promise<DoctorReport> {
    const { cwd, ...rest } = options;
    const report = await runDoctor(this.#paths, this.#workspaces.cache, rest);
    return { ...report, checks: [...report.checks, projectCheck(cwd ?? process.cwd())] };
  }

  /** Boot an environment once and save its warm image so creates are fast; proves it. Idempotent. */
  prepare(options: PrepareOptions = {}): Promise<PrepareResult> {
    return prepare(this.#workspaces, options);
  }

  /**
   * The project new workspaces are seeded from by default: a repository
   * cloned on the host (`repoUrl`), a checkout (`projectPath`), or the git
   * checkout `cwd` is in. Undefined when there is none.
   */
  resolveProject(options: Omit<ProjectOptions, "workDir">): Promise<ProjectSource | undefined> {
    return resolveProject({ ...options, workDir: path.join(this.#paths.tmp, "projects") });
  }

  /** Install the host packages pyro needs (apt-get; root). Idempotent. */
  setup(): Promise<SetupResult> {
    return installRequirements(this.#workspaces.progress);
  }
}
