/**
 * One handler per protocol op. A handler gets the request args, a context to
 * stream Data frames back, and a channel object whose callbacks it fills in to
 * receive Data/Eof/Cancel from the host. Its resolved value is the response.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Stream } from "../protocol/frames.js";
import { refreshIdentity } from "./identity-helper.js";
import {
  PROTOCOL_VERSION,
  type ExecArgs,
  type ExecResult,
  type DirEntry,
  type HelloResult,
  type ListDirArgs,
  type ListDirResult,
  type RefreshArgs,
  type RemoveArgs,
  type ReadFileArgs,
  type ReadFileResult,
  type TarArgs,
  type TarResult,
  type WriteFileArgs,
  type WriteFileResult,
} from "../protocol/messages.js";
import { VERSION as AGENT_VERSION } from "../version.js";
import { OUTPUT_LIMITS } from "../limits.js";
import type { ChannelContext, ChannelHooks, Handler } from "../protocol/channel-server.js";
import { OpError } from "../protocol/errors.js";
import { secretEnvironment, secretHandlers } from "./secrets.js";
import { serviceHandlers } from "./services.js";
import { shellHandlers } from "./shells.js";
import { BASE_ENV, killGroup, optNumber, signalNumber, str } from "./process.js";

/** After the process exits, how long to wait for its pipes to close (a background child may hold them). */
const PIPE_GRACE_MS = 1000;

/**
 * Enforce an op's `scope`: `target` must be inside it once symlinks are
 * resolved. With `followFinal` false the last component itself may be a
 * symlink (it is replaced or removed, never followed).
 */
function checkScope(target: string, scope: unknown, followFinal: boolean): void {
  if (scope === undefined || scope === null) return;
  const root = str(scope, "scope");
  const normal = path.posix.normalize(target);
  if (!path.posix.isAbsolute(normal) || (normal !== root && !normal.startsWith(`${root}/`))) {
    throw new OpError("path_not_allowed", `${target} is outside ${root}`);
  }
  const realRoot = fs.realpathSync(root);
  let probe = followFinal ? normal : path.posix.dirname(normal);
  // The deepest part of the path that exists decides where it really leads.
  while (!fs.existsSync(probe) && probe !== "/") probe = path.posix.dirname(probe);
  const real = fs.realpathSync(probe);
  if (real !== realRoot && !real.startsWith(`${realRoot}/`)) {
    throw new OpError(
      "path_not_allowed",
      `${target} leads outside ${root} (through a symlink to ${real})`,
    );
  }
}

async function hello(): Promise<HelloResult> {
  return {
    protocol_version: PROTOCOL_VERSION,
    agent_version: AGENT_VERSION,
    kernel_release: os.release(),
    uptime_seconds: os.uptime(),
  };
}

/**
 * Pump a child's output stream to the host, bounded, honouring backpressure.
 * Bytes past the bound are read and dropped so the child never blocks on a full pipe.
 */
function pump(
  source: NodeJS.ReadableStream & { pause(): void; resume(): void },
  stream: Stream,
  ctx: ChannelContext,
  maxBytes: number,
  onTruncate: () => void,
): void {
  let sent = 0;
  source.on("data", (chunk: Buffer) => {
    if (sent >= maxBytes) {
      if (chunk.length > 0) onTruncate();
      return;
    }
    const room = maxBytes - sent;
    const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (piece.length < chunk.length) onTruncate();
    sent += piece.length;
    if (!ctx.send(stream, piece)) {
      source.pause();
      ctx.onDrain(() => source.resume());
    }
  });
}

async function exec(
  rawArgs: Record<string, unknown>,
  ctx: ChannelContext,
  hooks: ChannelHooks,
): Promise<ExecResult> {
  const args = rawArgs as unknown as ExecArgs;
  if (!Array.isArray(args.argv) || args.argv.length === 0) {
    throw new OpError("bad_args", "argv must be a non-empty array of strings");
  }
  const argv = args.argv.map((a: unknown, i) => {
    if (i === 0) return str(a, "argv[0]");
    if (typeof a !== "string") throw new OpError("bad_args", `argv[${i}] must be a string`);
    return a;
  });
  const cwd = args.cwd ?? "/";
  const timeoutMs = optNumber(args.timeout_ms, "timeout_ms");
  const maxOutput =
    optNumber(args.max_output_bytes, "max_output_bytes") ?? OUTPUT_LIMITS.streamBytes;
  const env = { ...BASE_ENV, ...(args.env ?? {}), ...secretEnvironment(args.secret_env) };
  if (!fs.existsSync(cwd) || !fs.statSync(cwd).isDirectory()) {
    throw new OpError("cwd_not_found", `working directory ${cwd} does not exist in the guest`);
  }

  const started = Date.now();
  // detached: the command leads its own process group, so a timeout kills all of it.
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd,
    env,
    detached: true,
    stdio: [args.stdin === true ? "pipe" : "ignore", "pipe", "pipe"],
  });

  let timedOut = false;
  const truncated = { stdout: false, stderr: false };
  pump(child.stdout!, Stream.Stdout, ctx, maxOutput, () => (truncated.stdout = true));
  pump(child.stderr!, Stream.Stderr, ctx, maxOutput, () => (truncated.stderr = true));

  if (child.stdin) {
    child.stdin.on("error", () => {});
    hooks.onData = (_stream, bytes) => {
      ctx.inputQueued(bytes.length);
      child.stdin!.write(bytes, () => ctx.inputDone(bytes.length));
    };
    hooks.onEof = () => child.stdin!.end();
  }
  hooks.onCancel = () => killGroup(child);

  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          killGroup(child);
        }, timeoutMs);

  return new Promise<ExecResult>((resolve) => {
    let spawnError: NodeJS.ErrnoException | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let openPipes = 2;
    let grace: NodeJS.Timeout | undefined;
    let finished = false;

    const finish = () => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      if (grace) clearTimeout(grace);
      child.stdout!.destroy();
      child.stderr!.destroy();
      if (spawnError) {
        const message =
          spawnError.code === "ENOENT"
            ? `pyro-agent: ${argv[0]}: command not found\n`
            : `pyro-agent: ${argv[0]}: ${spawnError.message}\n`;
        ctx.send(Stream.Stderr, Buffer.from(message));
      }
      const code = spawnError
        ? spawnError.code === "ENOENT"
          ? 127
          : 126
        : (exit?.code ?? 128 + signalNumber(exit?.signal));
      resolve({
        exit_code: code,
        signal: exit?.signal ?? null,
        timed_out: timedOut,
        stdout_truncated: truncated.stdout,
        stderr_truncated: truncated.stderr,
        duration_ms: Date.now() - started,
      });
    };
    const maybeFinish = () => {
      if (spawnError || (exit && openPipes === 0)) finish();
    };
    child.on("error", (error: NodeJS.ErrnoException) => {
      spawnError = error;
      maybeFinish();
    });
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      // A background process may keep the pipes open forever: do not wait for it.
      grace = setTimeout(finish, PIPE_GRACE_MS);
      maybeFinish();
    });
    for (const pipe of [child.stdout!, child.stderr!]) {
      pipe.on("close", () => {
        openPipes -= 1;
        maybeFinish();
      });
      pipe.on("data", () => grace?.refresh());
    }
  });
}

async function readFile(
  rawArgs: Record<string, unknown>,
  ctx: ChannelContext,
): Promise<ReadFileResult> {
  const args = rawArgs as unknown as ReadFileArgs;
  const filePath = str(args.path, "path");
  checkScope(filePath, args.scope, true);
  const maxBytes = optNumber(args.max_bytes, "max_bytes") ?? Number.MAX_SAFE_INTEGER;
  // Refuse FIFOs and devices before opening: opening a FIFO would block forever.
  let before: fs.Stats;
  try {
    before = await fs.promises.stat(filePath);
  } catch {
    throw new OpError("not_found", `${filePath} does not exist`);
  }
  if (before.isDirectory()) throw new OpError("not_a_file", `${filePath} is a directory`);
  if (!before.isFile()) throw new OpError("not_a_file", `${filePath} is not a regular file`);
  const handle = await openOrExplain(filePath, "r");
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new OpError("not_a_file", `${filePath} is not a regular file`);
    const buffer = Buffer.allocUnsafe(64 * 1024);
    let sent = 0;
    while (sent < maxBytes) {
      const want = Math.min(buffer.length, maxBytes - sent);
      const { bytesRead } = await handle.read(buffer, 0, want, null);
      if (bytesRead === 0) break;
      sent += bytesRead;
      await ctx.write(Stream.Stdout, Buffer.from(buffer.subarray(0, bytesRead)));
    }
    return { size: stat.size, truncated: sent < stat.size, mode: stat.mode & 0o7777 };
  } finally {
    await handle.close();
  }
}

async function openOrExplain(filePath: string, flags: string): Promise<fs.promises.FileHandle> {
  try {
    return await fs.promises.open(filePath, flags);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new OpError("not_found", `${filePath} does not exist`);
    if (code === "EISDIR") throw new OpError("not_a_file", `${filePath} is a directory`);
    throw error;
  }
}

async function writeFile(
  rawArgs: Record<string, unknown>,
  ctx: ChannelContext,
  hooks: ChannelHooks,
): Promise<WriteFileResult> {
  const args = rawArgs as unknown as WriteFileArgs;
  const filePath = str(args.path, "path");
  checkScope(filePath, args.scope, false);
  const dir = path.dirname(filePath);
  // Write beside the target and rename: a reader never sees a half-written file.
  const tmp = path.join(dir, `.pyro-tmp-${randomBytes(6).toString("hex")}`);
  const opened = (async () => {
    if (args.parents) await fs.promises.mkdir(dir, { recursive: true });
    return openOrExplain(tmp, "wx");
  })();
  opened.catch(() => {}); // observed below
  let written = 0;
  let chain: Promise<unknown> = Promise.resolve();
  let failed: unknown;
  const received = new Promise<void>((resolve, reject) => {
    hooks.onData = (_stream, bytes) => {
      ctx.inputQueued(bytes.length);
      chain = chain.then(async () => {
        try {
          if (failed === undefined) await (await opened).write(bytes);
          written += bytes.length;
        } catch (error) {
          failed = error;
        } finally {
          ctx.inputDone(bytes.length);
        }
      });
    };
    hooks.onEof = () => {
      chain.then(() => (failed === undefined ? resolve() : reject(failed)), reject);
    };
    hooks.onCancel = () => reject(new OpError("cancelled", "write cancelled by host"));
  });
  received.catch(() => {}); // observed below; must not crash the agent if we bail out first
  const handle = await opened;
  try {
    await received;
    const previous = await fs.promises.stat(filePath).catch(() => undefined);
    if (previous) await leaveTheSecondOf(previous.mtimeMs, handle);
    await handle.sync();
    await handle.chmod(args.mode ?? 0o644);
    await handle.close();
    await fs.promises.rename(tmp, filePath);
    return { bytes_written: written };
  } catch (error) {
    await handle.close().catch(() => {});
    await fs.promises.rm(tmp, { force: true });
    throw error;
  }
}

/**
 * Caches that trust a file's mtime in whole seconds (Python's .pyc, make) take
 * a file replaced within the second of its last change, at the same size, for
 * unchanged: an agent's quick fix would run the old code. So a replacement
 * never keeps the old mtime's second; when it would, wait for the next second
 * (at most 1 s, and only for a file changed within the last one) and stamp it.
 */
async function leaveTheSecondOf(previousMtimeMs: number, handle: fs.promises.FileHandle) {
  const second = Math.floor(previousMtimeMs / 1000);
  const now = Date.now();
  if (Math.floor(now / 1000) !== second) return;
  await new Promise((resolve) => setTimeout(resolve, (second + 1) * 1000 - now + 5));
  const stamp = new Date();
  await handle.utimes(stamp, stamp);
}

/** Pack a directory (or one file, as its base name) with the guest's own tar and stream it to the host. */
async function tarOut(
  rawArgs: Record<string, unknown>,
  ctx: ChannelContext,
  hooks: ChannelHooks,
): Promise<TarResult> {
  const args = rawArgs as unknown as TarArgs;
  const target = str(args.path, "path");
  checkScope(target, args.scope, true);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch {
    throw new OpError("not_found", `${target} does not exist`);
  }
  const kind = stat.isDirectory() ? "directory" : "file";
  const tarArgs =
    kind === "directory"
      ? ["-C", target, "-cf", "-", "."]
      : ["-C", path.dirname(target), "-cf", "-", path.basename(target)];
  const child = spawn("tar", tarArgs, { stdio: ["ignore", "pipe", "pipe"] });
  let bytes = 0;
  const finished = tarFinished(child);
  hooks.onCancel = () => child.kill("SIGKILL");
  child.stdout.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (!ctx.send(Stream.Stdout, chunk)) {
      child.stdout.pause();
      ctx.onDrain(() => child.stdout.resume());
    }
  });
  await finished;
  return { bytes, kind };
}

/** Unpack a tar stream from the host into a directory with the guest's own tar. */
async function tarIn(
  rawArgs: Record<string, unknown>,
  ctx: ChannelContext,
  hooks: ChannelHooks,
): Promise<TarResult> {
  const dir = str((rawArgs as unknown as TarArgs).path, "path");
  checkScope(dir, (rawArgs as unknown as TarArgs).scope, true);
  fs.mkdirSync(dir, { recursive: true }); // synchronous: the hooks below must be set before any await
  const child = spawn("tar", ["-C", dir, "-xpf", "-"], { stdio: ["pipe", "ignore", "pipe"] });
  let bytes = 0;
  const finished = tarFinished(child);
  child.stdin.on("error", () => {});
  hooks.onData = (_stream, chunk) => {
    bytes += chunk.length;
    ctx.inputQueued(chunk.length);
    child.stdin.write(chunk, () => ctx.inputDone(chunk.length));
  };
  hooks.onEof = () => child.stdin.end();
  hooks.onCancel = () => child.kill("SIGKILL");
  await finished;
  return { bytes };
}

/** Resolves when a tar child exits 0; otherwise rejects with the start of what it said on stderr. */
function tarFinished(child: ChildProcess): Promise<void> {
  const errors: Buffer[] = [];
  child.stderr?.on("data", (chunk: Buffer) => {
    if (errors.length < 16) errors.push(chunk);
  });
  return childExit(child).then((code) => {
    if (code !== 0) {
      const said = Buffer.concat(errors).toString().slice(0, 2000);
      throw new OpError("tar_failed", `tar exited ${code}: ${said}`);
    }
  });
}

function childExit(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? 128 + signalNumber(signal)));
  });
}

async function sync(): Promise<Record<string, never>> {
  await childExit(spawn("sync", [], { stdio: "ignore" }));
  return {};
}

/** Stream a directory listing as JSON lines (never following symlinks), bounded by max_entries. */
async function listDir(
  rawArgs: Record<string, unknown>,
  ctx: ChannelContext,
): Promise<ListDirResult> {
  const args = rawArgs as unknown as ListDirArgs;
  const root = str(args.path, "path");
  checkScope(root, args.scope, true);
  const max = optNumber(args.max_entries, "max_entries") ?? 10_000;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(root);
  } catch {
    throw new OpError("not_found", `${root} does not exist`);
  }
  if (!stat.isDirectory()) throw new OpError("not_a_directory", `${root} is not a directory`);
  let count = 0;
  let truncated = false;
  const queue = [""];
  while (queue.length > 0 && !truncated) {
    const rel = queue.shift()!;
    let names: string[];
    try {
      names = fs.readdirSync(path.join(root, rel)).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      if (count >= max) {
        truncated = true;
        break;
      }
      const relPath = rel ? `${rel}/${name}` : name;
      const full = path.join(root, relPath);
      let entryStat: fs.Stats;
      try {
        entryStat = fs.lstatSync(full);
      } catch {
        continue;
      }
      const entry: DirEntry = {
        path: relPath,
        type: entryStat.isFile()
          ? "file"
          : entryStat.isDirectory()
            ? "directory"
            : entryStat.isSymbolicLink()
              ? "symlink"
              : "other",
        size: entryStat.size,
        mode: entryStat.mode & 0o7777,
      };
      if (entry.type === "symlink") entry.link_target = fs.readlinkSync(full);
      await ctx.write(Stream.Stdout, Buffer.from(`${JSON.stringify(entry)}\n`));
      count += 1;
      if (entry.type === "directory" && args.recursive) queue.push(relPath);
    }
  }
  return { count, truncated };
}

async function remove(rawArgs: Record<string, unknown>): Promise<{ removed: boolean }> {
  const args = rawArgs as unknown as RemoveArgs;
  const target = str(args.path, "path");
  checkScope(target, args.scope, false);
  if (args.scope !== undefined && path.posix.normalize(target) === args.scope) {
    throw new OpError("path_not_allowed", `refusing to remove ${target} itself`);
  }
  const existed = fs.existsSync(target) || isSymlink(target);
  await fs.promises.rm(target, { recursive: true, force: true });
  return { removed: existed };
}

function isSymlink(target: string): boolean {
  try {
    return fs.lstatSync(target).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * After a memory snapshot is restored the guest wakes up with the clock,
 * entropy pool and name it was saved with: the host sends fresh ones.
 */
async function refresh(rawArgs: Record<string, unknown>): Promise<{ clock_skew_ms: number }> {
  const args = rawArgs as unknown as RefreshArgs;
  const timeMs = optNumber(args.time_ms, "time_ms");
  const skew = timeMs === undefined ? 0 : Date.now() - timeMs;
  if (typeof args.entropy === "string") {
    fs.writeFileSync("/dev/urandom", Buffer.from(args.entropy, "base64"));
  }
  // The clock, and a reseed so the entropy just written is used from now on.
  await refreshIdentity(timeMs === undefined ? undefined : Math.round(timeMs / 1000));
  if (typeof args.hostname === "string" && /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/.test(args.hostname)) {
    fs.writeFileSync("/proc/sys/kernel/hostname", args.hostname);
  }
  return { clock_skew_ms: skew };
}

export const handlers: Record<string, Handler> = {
  ...serviceHandlers,
  ...shellHandlers,
  ...secretHandlers,
  hello,
  exec,
  read_file: readFile,
  write_file: writeFile,
  tar_out: tarOut,
  tar_in: tarIn,
  sync,
  list_dir: listDir,
  remove,
  refresh,
};
