/**
 * Services (contract §4): named long-running processes the agent supervises.
 * Each runs in its own process group. Its stdout and stderr go through the
 * agent into a log under /run/pyro/services (tmpfs, outside /workspace),
 * rotated so a service that prints without end costs bounded memory.
 * Readiness is polled here, in the guest; start answers once the service is
 * ready or has failed (exited first, or not ready in time: then its group is
 * killed), with the last lines of its log.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import type net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ChannelContext, Handler } from "../protocol/channel-server.js";
import { OpError, WireCodes } from "../protocol/errors.js";
import { Stream } from "../protocol/frames.js";
import {
  isHttpUrl,
  serviceIsLive,
  type ServiceInfo,
  type ServiceLogsArgs,
  type ServiceReadiness,
  type ServiceStartArgs,
} from "../protocol/messages.js";
import { BOUNDS, DEFAULTS, OUTPUT_LIMITS } from "../limits.js";
import { BASE_ENV, optNumber, signalGroup, str } from "./process.js";
import { secretEnvironment, secretsStream } from "./secrets.js";

/** tmpfs, outside /workspace; tests running the agent on a host point it elsewhere. */
function servicesDir(): string {
  return process.env.PYRO_AGENT_SERVICES_DIR ?? "/run/pyro/services";
}

export const SERVICE_LIMITS = {
  /** The current log file; one rotated file is kept besides, so a log holds at most twice this. */
  logFileBytes: OUTPUT_LIMITS.serviceLogBytes / 2,
  /** How much of the log a failed start returns. */
  tailBytes: 4096,
  defaultTailLines: 100,
  /** Between SIGTERM and SIGKILL when a service is stopped. */
  stopGraceMs: 5000,
  readyTimeoutMs: {
    default: DEFAULTS.serviceReadyTimeoutSeconds * 1000,
    max: BOUNDS.serviceReadyTimeoutSeconds.max * 1000,
  },
  readyIntervalMs: {
    default: DEFAULTS.serviceReadyIntervalMs,
    min: BOUNDS.serviceReadyIntervalMs.min,
  },
  /** A readiness command gets at most this long per try. */
  readyCommandMs: 10_000,
  services: 32,
} as const;

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * A log that keeps its last 2 × logFileBytes: the current file and the one
 * before. A write that fails (a full /run) is counted as dropped, never
 * thrown: the service's output must not take the agent down.
 */
class RotatingLog {
  private fd: number | undefined;
  private size = 0;
  total = 0;
  dropped = 0;

  constructor(private readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.rmSync(this.previous, { force: true });
    this.fd = fs.openSync(file, "w", 0o600);
  }

  private get previous(): string {
    return `${this.file}.1`;
  }

  write(chunk: Buffer): void {
    const limit = SERVICE_LIMITS.logFileBytes;
    this.total += chunk.length;
    if (this.fd === undefined) {
      this.dropped += chunk.length;
      return;
    }
    const piece = chunk.length > limit ? chunk.subarray(chunk.length - limit) : chunk;
    this.dropped += chunk.length - piece.length;
    try {
      if (this.size + piece.length > limit && this.size > 0) {
        fs.closeSync(this.fd);
        this.fd = undefined;
        this.dropped += fileSize(this.previous);
        fs.renameSync(this.file, this.previous);
        this.fd = fs.openSync(this.file, "w", 0o600);
        this.size = 0;
      }
      fs.writeSync(this.fd, piece);
      this.size += piece.length;
    } catch {
      this.dropped += piece.length;
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // already gone
    }
    this.fd = undefined;
  }

  /** Remove the log's files (a forgotten service). */
  remove(): void {
    this.close();
    fs.rmSync(path.dirname(this.file), { recursive: true, force: true });
  }

  /** What the log still holds, oldest first. */
  contents(): Buffer {
    return Buffer.concat([readOr(this.previous), readOr(this.file)]);
  }
}

interface Service {
  info: ServiceInfo;
  child: ChildProcess;
  log: RotatingLog;
  /** Why the agent is ending it, if it is (a stop, or readiness that never came). */
  ending: { state: "stopped" | "failed"; reason: string } | undefined;
  exited: Promise<void>;
}

const services = new Map<string, Service>();

function serviceName(value: unknown): string {
  const name = str(value, "name");
  if (!NAME_PATTERN.test(name)) {
    throw new OpError(
      "bad_args",
      `invalid service name "${name}": use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return name;
}

function find(name: string): Service {
  const service = services.get(name);
  if (!service) {
    const known = [...services.keys()];
    throw new OpError(
      WireCodes.ServiceNotFound,
      `no service named ${name}${known.length ? ` (services: ${known.join(", ")})` : " (none started)"}`,
    );
  }
  return service;
}

function snapshot(service: Service): ServiceInfo {
  return {
    ...service.info,
    log_bytes: service.log.total,
    log_dropped_bytes: service.log.dropped,
  };
}

function checkReadiness(value: unknown): ServiceReadiness | null {
  if (value === undefined || value === null) return null;
  const r = value as ServiceReadiness;
  switch (r.kind) {
    case "file":
      return { kind: "file", path: str(r.path, "readiness.path") };
    case "tcp": {
      const port = r.port;
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new OpError("bad_args", "readiness.port must be a port from 1 to 65535");
      return { kind: "tcp", port };
    }
    case "http": {
      const url = str(r.url, "readiness.url");
      if (!isHttpUrl(url))
        throw new OpError("bad_args", `readiness URL must be an http:// or https:// URL: ${url}`);
      return { kind: "http", url };
    }
    case "command":
      return { kind: "command", command: str(r.command, "readiness.command") };
    default:
      throw new OpError("bad_args", "readiness.kind must be file, tcp, http or command");
  }
}

async function serviceStart(
  raw: Record<string, unknown>,
): Promise<ServiceInfo & { log_tail: string; warnings: string[] }> {
  const args = raw as unknown as ServiceStartArgs;
  const name = serviceName(args.name);
  const previous = services.get(name);
  if (previous && serviceIsLive(previous.info)) {
    throw new OpError(
      WireCodes.ServiceExists,
      `service ${name} is already ${previous.info.state}: stop it first, or use another name`,
    );
  }
  if (!previous && services.size >= SERVICE_LIMITS.services) forgetOneEnded();
  if (!Array.isArray(args.argv) || args.argv.length === 0)
    throw new OpError("bad_args", "argv must be a non-empty array of strings");
  const argv = args.argv.map((a: unknown, i) => str(a, `argv[${i}]`));
  const readiness = checkReadiness(args.readiness);
  const timeoutMs = Math.min(
    optNumber(args.ready_timeout_ms, "ready_timeout_ms") ?? SERVICE_LIMITS.readyTimeoutMs.default,
    SERVICE_LIMITS.readyTimeoutMs.max,
  );
  const intervalMs = Math.max(
    optNumber(args.ready_interval_ms, "ready_interval_ms") ??
      SERVICE_LIMITS.readyIntervalMs.default,
    SERVICE_LIMITS.readyIntervalMs.min,
  );
  const cwd = args.cwd ?? "/workspace";
  if (!fs.existsSync(cwd) || !fs.statSync(cwd).isDirectory())
    throw new OpError("cwd_not_found", `working directory ${cwd} does not exist in the guest`);
  const env = { ...BASE_ENV, ...(args.env ?? {}), ...secretEnvironment(args.secret_env) };

  previous?.log.close();
  // A ready file left by an earlier run does not count: it must be (re)made by this one.
  const readyFileBefore = readiness?.kind === "file" ? mtimeOf(readiness.path) : undefined;
  const log = new RotatingLog(path.join(servicesDir(), name, "log"));
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const service: Service = {
    info: {
      name,
      state: readiness ? "starting" : "running",
      command: argv,
      cwd,
      pid: child.pid ?? null,
      readiness,
      started_at: new Date().toISOString(),
      ready_at: null,
      ended_at: null,
      exit_code: null,
      signal: null,
      stop_reason: null,
      log_bytes: 0,
      log_dropped_bytes: 0,
    },
    child,
    log,
    ending: undefined,
    exited: new Promise<void>((resolve) => {
      const done = () => resolve();
      child.once("exit", done);
      child.once("error", done);
    }),
  };
  services.set(name, service);
  // Secrets are redacted before anything reaches the log.
  const redaction = secretsStream();
  child.stdout!.on("data", (chunk: Buffer) => log.write(redaction.push(chunk)));
  child.stderr!.on("data", (chunk: Buffer) => log.write(redaction.push(chunk)));
  child.on("close", () => {
    log.write(redaction.end());
    log.close();
  });
  child.on("error", (error: NodeJS.ErrnoException) => {
    service.ending = {
      state: "failed",
      reason:
        error.code === "ENOENT" ? `${argv[0]}: command not found` : `${argv[0]}: ${error.message}`,
    };
    ended(service, error.code === "ENOENT" ? 127 : 126, null);
    log.close();
  });
  child.on("exit", (code, signal) => ended(service, code, signal));
  // It has started (or could not): only then is "running" true.
  await new Promise<void>((resolve) => {
    child.once("spawn", resolve);
    child.once("error", () => resolve());
  });

  if (readiness) {
    try {
      await awaitReady(service, readiness, env, timeoutMs, intervalMs, readyFileBefore);
    } catch (error) {
      await end(service, {
        state: "failed",
        reason: `its readiness check failed: ${String(error)}`,
      });
    }
  }
  const failed = service.info.state === "failed";
  return {
    ...snapshot(service),
    log_tail: failed ? tailText(log.contents(), SERVICE_LIMITS.tailBytes) : "",
    warnings:
      service.info.state === "ready" ? listenWarnings(args.published_guest_ports ?? []) : [],
  };
}

/**
 * Published connections arrive at the guest's own address: a guest port
 * bound to loopback only passes a readiness check but never answers them.
 */
function listenWarnings(ports: readonly number[]): string[] {
  const listening = listeningAddresses();
  return ports.flatMap((port) => {
    const addresses = listening.get(port) ?? [];
    if (addresses.length === 0) return [`nothing listens on guest port ${port} yet`];
    if (addresses.every((a) => a === "loopback")) {
      return [
        `guest port ${port} is bound to 127.0.0.1 only, so its published host port gets no answer: make the service listen on 0.0.0.0`,
      ];
    }
    return [];
  });
}

/** Listening TCP ports and whether each socket is on loopback or not, from /proc/net/tcp{,6}. */
function listeningAddresses(): Map<number, ("loopback" | "any")[]> {
  const found = new Map<number, ("loopback" | "any")[]>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = fs.readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== "0A") continue; // LISTEN
      const [hex = "", hexPort = ""] = (fields[1] ?? "").split(":");
      const loopback = isLoopbackHex(hex.toUpperCase());
      const port = parseInt(hexPort, 16);
      found.set(port, [...(found.get(port) ?? []), loopback ? "loopback" : "any"]);
    }
  }
  return found;
}

/**
 * A /proc/net/tcp{,6} address (hex, 32-bit words little-endian) on loopback:
 * 127.0.0.0/8, ::1, or ::ffff:127.x.x.x.
 */
function isLoopbackHex(hex: string): boolean {
  if (hex.length === 8) return hex.endsWith("7F");
  if (hex === "00000000000000000000000001000000") return true;
  return hex.startsWith("0000000000000000FFFF0000") && hex.endsWith("7F");
}

function mtimeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Record how a service ended; whatever it left behind in its process group goes too. */
function ended(service: Service, code: number | null, signal: NodeJS.Signals | null): void {
  const info = service.info;
  if (info.ended_at) return;
  info.ended_at = new Date().toISOString();
  info.exit_code = code;
  info.signal = signal;
  const how = code !== null ? `exit code ${code}` : `signal ${signal ?? "?"}`;
  if (service.ending) {
    info.state = service.ending.state;
    info.stop_reason = service.ending.reason;
  } else if (info.state === "starting") {
    info.state = "failed";
    info.stop_reason = `exited before it was ready (${how})`;
  } else {
    info.state = "exited";
    info.stop_reason = `exited on its own (${how})`;
  }
  if (info.pid !== null) signalGroup(info.pid, "SIGKILL");
  info.pid = null;
}

async function awaitReady(
  service: Service,
  readiness: ServiceReadiness,
  env: Record<string, string>,
  timeoutMs: number,
  intervalMs: number,
  readyFileBefore: number | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (service.info.state === "starting") {
    const remaining = deadline - Date.now();
    const budget = Math.max(1, Math.min(remaining, intervalMs * 4));
    if (await isReady(readiness, env, budget, readyFileBefore).catch(() => false)) {
      if (service.info.state === "starting") {
        service.info.state = "ready";
        service.info.ready_at = new Date().toISOString();
      }
      return;
    }
    if (Date.now() >= deadline) {
      await end(service, { state: "failed", reason: `not ready after ${timeoutMs / 1000} s` });
      return;
    }
    await Promise.race([
      sleep(Math.max(0, Math.min(intervalMs, deadline - Date.now()))),
      service.exited,
    ]);
  }
}

async function isReady(
  readiness: ServiceReadiness,
  env: Record<string, string>,
  budgetMs: number,
  readyFileBefore: number | undefined,
): Promise<boolean> {
  switch (readiness.kind) {
    case "file": {
      const mtime = mtimeOf(readiness.path);
      return mtime !== undefined && (readyFileBefore === undefined || mtime > readyFileBefore);
    }
    case "tcp":
      return (
        (await connects("127.0.0.1", readiness.port, budgetMs)) ||
        (await connects("::1", readiness.port, budgetMs))
      );
    case "http":
      return answers(readiness.url, budgetMs);
    case "command":
      return succeeds(readiness.command, env, Math.min(budgetMs, SERVICE_LIMITS.readyCommandMs));
  }
}

/*
 * node:net, node:http and node:https are loaded when a readiness check first
 * needs them, not at agent start: under software emulation loading them
 * (https pulls in tls and crypto) adds most of a second to every cold boot.
 */

async function connects(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const socket: net.Socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Ready when the URL answers 2xx or 3xx (a dev server's own certificate is accepted). */
async function answers(url: string, timeoutMs: number): Promise<boolean> {
  const { get } = url.startsWith("https:") ? await import("node:https") : await import("node:http");
  return new Promise((resolve) => {
    try {
      const request = get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        resolve(status >= 200 && status < 400);
      });
      request.on("timeout", () => request.destroy());
      request.on("error", () => resolve(false));
    } catch {
      resolve(false);
    }
  });
}

function succeeds(
  command: string,
  env: Record<string, string>,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("sh", ["-c", command], { env, detached: true, stdio: "ignore" });
    const timer = setTimeout(() => child.pid && signalGroup(child.pid, "SIGKILL"), timeoutMs);
    child.on("error", () => resolve(false));
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

/** SIGTERM its group, SIGKILL after the grace period; resolves once it has exited. */
async function end(service: Service, why: NonNullable<Service["ending"]>): Promise<void> {
  if (!serviceIsLive(service.info) || service.info.pid === null) return;
  // A stop already under way keeps its reason.
  service.ending ??= why;
  const pid = service.info.pid;
  signalGroup(pid, "SIGTERM");
  const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), SERVICE_LIMITS.stopGraceMs);
  await service.exited;
  clearTimeout(timer);
}

/** Make room in the table: forget the service that ended longest ago. */
function forgetOneEnded(): void {
  const endedOnes = [...services.values()]
    .filter((s) => !serviceIsLive(s.info))
    .sort((a, b) => (a.info.ended_at ?? "").localeCompare(b.info.ended_at ?? ""));
  const oldest = endedOnes[0];
  if (!oldest) {
    throw new OpError(
      WireCodes.LimitExceeded,
      `${SERVICE_LIMITS.services} services are running already: stop one first`,
    );
  }
  oldest.log.remove();
  services.delete(oldest.info.name);
}

async function serviceStop(raw: Record<string, unknown>): Promise<ServiceInfo> {
  const service = find(serviceName(raw.name));
  await end(service, { state: "stopped", reason: "stopped on request" });
  return snapshot(service);
}

async function serviceList(): Promise<{ services: ServiceInfo[] }> {
  return { services: [...services.values()].map(snapshot) };
}

async function serviceStatus(raw: Record<string, unknown>): Promise<ServiceInfo> {
  return snapshot(find(serviceName(raw.name)));
}

async function serviceLogs(
  raw: Record<string, unknown>,
  ctx: ChannelContext,
): Promise<{ bytes: number; truncated: boolean }> {
  const args = raw as unknown as ServiceLogsArgs;
  const service = find(serviceName(args.name));
  const held = service.log.contents();
  let text = held;
  let truncated = service.log.dropped > 0;
  if (args.all !== true) {
    const lines = optNumber(args.tail_lines, "tail_lines") ?? SERVICE_LIMITS.defaultTailLines;
    text = lastLines(held, lines);
    truncated = text.length < held.length || truncated;
  }
  await ctx.write(Stream.Stdout, text);
  return { bytes: text.length, truncated };
}

/** The last `count` lines of `text` (a final newline ends the last line, it starts none). */
function lastLines(text: Buffer, count: number): Buffer {
  if (count <= 0) return Buffer.alloc(0);
  let start = text.at(-1) === 0x0a ? text.length - 1 : text.length;
  for (let line = 0; line < count; line++) {
    const newline = start > 0 ? text.lastIndexOf(0x0a, start - 1) : -1;
    if (newline < 0) return text;
    start = newline;
  }
  return text.subarray(start + 1);
}

function tailText(text: Buffer, bytes: number): string {
  return text.subarray(Math.max(0, text.length - bytes)).toString("utf8");
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function readOr(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    return Buffer.alloc(0);
  }
}

export const serviceHandlers: Record<string, Handler> = {
  service_start: serviceStart,
  service_stop: serviceStop,
  service_list: serviceList,
  service_status: serviceStatus,
  service_logs: serviceLogs,
};
