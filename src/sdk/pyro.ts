/**
 * The TypeScript SDK: `new Pyro().run({...})`, `pyro.environments.*`,
 * `pyro.doctor()`. Results are the same snake_case payloads `--json` prints.
 */
import path from "node:path";
import { ensurePrivateDir, resolvePaths, type PyroPaths } from "../config/paths.js";
import { runDoctor, type DoctorOptions, type DoctorReport } from "../doctor/doctor.js";
import { EnvironmentCache } from "../environments/cache.js";
import {
  inspectEnvironment,
  listEnvironments,
  pullEnvironment,
  type EnvironmentInfo,
  type EnvironmentInspection,
  type PruneResult,
  type PullResult,
} from "../environments/service.js";
import { installRequirements, type SetupResult } from "../host/requirements.js";
import { silentProgress, type ProgressFn } from "../util/progress.js";
import { DEFAULT_MAX_RUNNING, type LaunchContext } from "../workspaces/launch.js";
import { runOnce, type RunOptions, type RunResult } from "../workspaces/run.js";
import { WorkspaceService } from "../workspaces/service.js";
import { prepare, type PrepareOptions, type PrepareResult } from "../workspaces/prepare.js";
import { pruneCaches } from "../workspaces/prune.js";
import { resolveProject, type ProjectOptions, type ProjectSource } from "../workspaces/project.js";
import type { McpServerOptions } from "../mcp/server.js";
import type { McpServer } from "@modelcontextprotocol/server";

export interface PyroOptions {
  /** State directory; defaults to $PYRO_HOME, else the XDG directories. */
  home?: string;
  /** Called with human progress messages during long work (builds, boots). */
  progress?: ProgressFn;
  /** Most VMs running at once (default 4, or $PYRO_MAX_RUNNING). */
  maxRunning?: number;
}

export class Pyro {
  readonly paths: PyroPaths;
  readonly environments: {
    list(): Promise<EnvironmentInfo[]>;
    pull(name: string, options?: { force?: boolean }): Promise<PullResult>;
    inspect(name: string): Promise<EnvironmentInspection>;
    prune(options?: { all?: boolean }): Promise<PruneResult>;
  };
  /**
   * Persistent workspaces: create, list, status, update, stop, start, delete,
   * exec, logs, listFiles, readFile, writeFile, applyPatch, diff, export, syncPush.
   */
  readonly workspaces: WorkspaceService;
  private readonly cache: EnvironmentCache;
  private readonly progress: ProgressFn;
  private readonly maxRunning: number;

  constructor(options: PyroOptions = {}) {
    this.paths = resolvePaths(
      options.home ? { ...process.env, PYRO_HOME: options.home } : process.env,
    );
    ensurePrivateDir(this.paths.data);
    ensurePrivateDir(this.paths.cache);
    this.cache = new EnvironmentCache(this.paths);
    this.progress = options.progress ?? silentProgress;
    const envLimit = Number(process.env.PYRO_MAX_RUNNING);
    this.maxRunning =
      options.maxRunning ??
      (Number.isInteger(envLimit) && envLimit > 0 ? envLimit : DEFAULT_MAX_RUNNING);
    const cache = this.cache;
    const progress = this.progress;
    this.workspaces = new WorkspaceService(this.paths, cache, progress, this.maxRunning);
    this.environments = {
      list: () => listEnvironments(cache),
      pull: (name, opts) => pullEnvironment(cache, name, progress, opts),
      inspect: (name) => inspectEnvironment(cache, name),
      prune: (opts) => pruneCaches(this.paths, cache, this.workspaces.store, opts),
    };
  }

  /** Boot a fresh VM, run one command, delete the VM. */
  run(options: RunOptions): Promise<RunResult> {
    return runOnce(this.launchContext(), options);
  }

  doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
    return runDoctor(this.paths, this.cache, options);
  }

  /** Boot an environment once and save a warm snapshot so creates are fast; proves it. Idempotent. */
  prepare(options: PrepareOptions = {}): Promise<PrepareResult> {
    return prepare(this.launchContext(), this.workspaces, options);
  }

  /**
   * The project new workspaces are seeded from by default: a repository
   * cloned on the host (`repoUrl`), a checkout (`projectPath`), or the git
   * checkout `cwd` is in. Undefined when there is none.
   */
  resolveProject(options: Omit<ProjectOptions, "workDir">): Promise<ProjectSource | undefined> {
    return resolveProject({ ...options, workDir: path.join(this.paths.tmp, "projects") });
  }

  /**
   * An MCP server exposing this Pyro's tools for one profile or mode (the
   * embedding entry point; `pyro mcp serve` uses it too). Connect it to any
   * transport of the official MCP SDK. Loaded on first use, so programs that
   * never serve MCP never load the MCP SDK.
   */
  async createMcpServer(options: McpServerOptions = {}): Promise<McpServer> {
    const { createPyroMcpServer } = await import("../mcp/server.js");
    return createPyroMcpServer(this, options);
  }

  /** Install the host packages pyro needs (apt-get; root). Idempotent. */
  setup(): Promise<SetupResult> {
    return installRequirements(this.progress);
  }

  private launchContext(): LaunchContext {
    return {
      paths: this.paths,
      cache: this.cache,
      progress: this.progress,
      maxRunning: this.maxRunning,
    };
  }
}
