/**
 * The project source a server seeds new workspaces from by default (contract
 * §6): the git checkout it was started in, another checkout (--project-path),
 * or a repository cloned on the host (--repo-url [--repo-ref]).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";
import { runCommand } from "../util/process.js";
import { findExecutable } from "../util/which.js";

export interface ProjectSource {
  /** What to seed from: a directory (a git checkout's tracked and untracked-not-ignored files). */
  seedPath: string;
  origin_kind: "git" | "directory" | "repo";
  /** The checkout's path, or the repository URL (with `#ref` when one was asked for). */
  origin_ref: string;
  /** Remove what resolving made (a clone). */
  cleanup(): void;
}

export interface ProjectOptions {
  projectPath?: string;
  repoUrl?: string;
  repoRef?: string;
  /** Where the server was started: its git checkout is the default. */
  cwd?: string;
  /** A private directory for clones. */
  workDir: string;
}

/** The project source, or undefined when there is none (not started in a checkout, nothing named). */
export async function resolveProject(options: ProjectOptions): Promise<ProjectSource | undefined> {
  if (options.repoRef && !options.repoUrl) {
    throw new PyroError(ErrorCodes.UsageError, "--repo-ref needs --repo-url");
  }
  if (options.repoUrl && options.projectPath) {
    throw new PyroError(ErrorCodes.UsageError, "give --project-path or --repo-url, not both");
  }
  if (options.repoUrl) return cloneRepository(options.repoUrl, options.repoRef, options.workDir);
  if (options.projectPath) {
    const dir = path.resolve(options.projectPath);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
      throw new PyroError(ErrorCodes.UsageError, `project path ${dir} is not a directory`, {
        hint: "give the path of a checkout (or any directory) to seed workspaces from",
      });
    }
    const top = gitTopLevel(dir);
    return top
      ? { seedPath: top, origin_kind: "git", origin_ref: top, cleanup: () => {} }
      : { seedPath: dir, origin_kind: "directory", origin_ref: dir, cleanup: () => {} };
  }
  const top = options.cwd ? gitTopLevel(options.cwd) : undefined;
  return top
    ? { seedPath: top, origin_kind: "git", origin_ref: top, cleanup: () => {} }
    : undefined;
}

/**
 * What `pyro mcp serve` started in `cwd` (with no project flags) would seed
 * new workspaces from, as a doctor check: a state, never a failure.
 */
export function projectCheck(cwd: string): {
  name: string;
  ok: true;
  note?: true;
  detail: string;
  fix?: string;
} {
  const top = gitTopLevel(cwd);
  return top
    ? {
        name: "project",
        ok: true,
        detail: `a server started here seeds new workspaces from the git checkout ${top} (tracked and untracked-not-ignored files)`,
      }
    : {
        name: "project",
        ok: true,
        note: true,
        detail: `${cwd} is not in a git checkout: a server started here gives empty workspaces`,
        fix: "start hosts in your project, or register pyro with --project-path DIR or --repo-url URL",
      };
}

/** The top of the git checkout `dir` is in, or undefined. */
export function gitTopLevel(dir: string): string | undefined {
  if (!findExecutable("git")) return undefined;
  try {
    const top = execFileSync("git", ["-C", dir, "rev-parse", "--show-toplevel"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
    return top || undefined;
  } catch {
    return undefined;
  }
}

async function cloneRepository(
  url: string,
  ref: string | undefined,
  workDir: string,
): Promise<ProjectSource> {
  if (!findExecutable("git")) {
    throw new PyroError(ErrorCodes.HostRequirementMissing, "--repo-url needs git on the host", {
      hint: "apt-get install git",
    });
  }
  if (url.startsWith("-") || (ref !== undefined && ref.startsWith("-"))) {
    throw new PyroError(ErrorCodes.UsageError, "a repository URL or ref cannot start with '-'");
  }
  fs.mkdirSync(workDir, { recursive: true, mode: 0o700 });
  const dir = fs.mkdtempSync(path.join(workDir, "clone-"));
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  const git = (args: string[]) =>
    runCommand("git", args, {
      errorCode: ErrorCodes.UsageError,
      env: { ...process.env, GIT_TERMINAL_PROMPT: "0" },
    });
  try {
    await git(["clone", "--quiet", "--", url, dir]);
    if (ref) await git(["-C", dir, "checkout", "--quiet", "--detach", ref]);
  } catch (error) {
    cleanup();
    throw new PyroError(
      ErrorCodes.UsageError,
      `could not clone ${url}${ref ? ` at ${ref}` : ""}: ${(error as Error).message.split("\n")[0]}`,
      { hint: "check the URL (and ref); the host must be able to reach it" },
    );
  }
  return {
    seedPath: dir,
    origin_kind: "repo",
    origin_ref: ref ? `${url}#${ref}` : url,
    cleanup,
  };
}
