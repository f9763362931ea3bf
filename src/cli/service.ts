/**
 * `pyro workspace service …`: start, list, status, logs, stop. Parsing and
 * printing only; each is one SDK call whose payload `--json` prints.
 */
import type { Command } from "commander";
import {
  DEFAULTS,
  ErrorCodes,
  PyroError,
  type ServiceStartOptions,
  type WorkspaceService,
} from "../index.js";
import { act, collect, positiveInt, positiveNumber, sdk } from "./common.js";
import { printJson, table } from "./output.js";

interface JsonOpt {
  json?: boolean;
}

function describeService(s: WorkspaceService): string {
  const how =
    s.state === "ready" || s.state === "running" || s.state === "starting"
      ? `pid ${s.pid ?? "?"}`
      : (s.stop_reason ?? "");
  const ports = s.published_ports
    .map((p) => `127.0.0.1:${p.host_port} → ${p.guest_port}`)
    .join(", ");
  return `${s.name}: ${s.state}${how ? ` (${how})` : ""}${ports ? `, published ${ports}` : ""}`;
}

export function registerServiceCommands(ws: Command, passthrough: string[]): void {
  const service = ws
    .command("service")
    .description(
      "long-running processes in a workspace, with readiness checks and published ports",
    );

  service
    .command("start")
    .argument("<workspace>", "id or name")
    .argument("<name>", "a name for the service")
    .description(
      "start a service and wait until it is ready (exits 1 with its log tail if it fails)",
    )
    .option("--cwd <path>", "working directory in the guest (default /workspace)")
    .option("--ready-file <path>", "ready once this file exists in the guest")
    .option(
      "--ready-tcp <port>",
      "ready once 127.0.0.1:PORT accepts connections in the guest",
      positiveInt("--ready-tcp"),
    )
    .option("--ready-http <url>", "ready once this URL answers 2xx or 3xx in the guest")
    .option("--ready-command <cmd>", "ready once this command exits 0 in the guest")
    .option(
      "--ready-timeout-seconds <n>",
      `fail (and kill it) when not ready after this long (default ${DEFAULTS.serviceReadyTimeoutSeconds})`,
      positiveNumber("--ready-timeout-seconds"),
    )
    .option(
      "--ready-interval-ms <n>",
      `between readiness checks (default ${DEFAULTS.serviceReadyIntervalMs})`,
      positiveInt("--ready-interval-ms"),
    )
    .option(
      "--publish <[host:]guest>",
      "forward 127.0.0.1:HOST on this machine to the guest port while the service runs (repeatable; a free host port when HOST is omitted; the service must listen on 0.0.0.0; needs --network-policy egress+published-ports)",
      collect,
    )
    .option(
      "--secret-env <NAME[=VAR]>",
      "give the service secret NAME as environment variable NAME (or VAR) (repeatable)",
      collect,
    )
    .option("--json", "print as JSON")
    .usage("<workspace> <name> [options] -- COMMAND…")
    .action(
      (
        id: string,
        name: string,
        opts: JsonOpt &
          Omit<ServiceStartOptions, "command" | "publish" | "env" | "secretEnv"> & {
            publish?: string[];
            secretEnv?: string[];
          },
      ) =>
        act(!!opts.json, async () => {
          if (passthrough.length === 0) {
            throw new PyroError(ErrorCodes.UsageError, "no command given", {
              hint: "usage: pyro workspace service start ID NAME [options] -- COMMAND…",
            });
          }
          const { json, ...options } = opts;
          const started = await sdk(!!json).workspaces.startService(id, name, {
            ...options,
            command: passthrough,
          });
          if (opts.json) return printJson(started);
          process.stdout.write(`${describeService(started)}\n`);
          for (const warning of started.warnings) process.stderr.write(`warning: ${warning}\n`);
        }),
    );

  service
    .command("list")
    .argument("<workspace>", "id or name")
    .description("the workspace's services and their states")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const result = await sdk(!!opts.json).workspaces.listServices(id);
        if (opts.json) return printJson(result);
        if (result.services.length === 0)
          return void process.stderr.write(
            "no services; start one with `pyro workspace service start`\n",
          );
        const rows = [["NAME", "STATE", "PID", "PUBLISHED", "STARTED", "ENDED"]];
        for (const s of result.services) {
          rows.push([
            s.name,
            s.state,
            s.pid === null ? "-" : String(s.pid),
            s.published_ports.map((p) => `${p.host_port}→${p.guest_port}`).join(",") || "-",
            s.started_at,
            s.ended_at ? `${s.ended_at} (${s.stop_reason ?? ""})` : "-",
          ]);
        }
        process.stdout.write(`${table(rows)}\n`);
      }),
    );

  service
    .command("status")
    .argument("<workspace>", "id or name")
    .argument("<name>", "service name")
    .description("one service's state, exit code and published ports")
    .option("--json", "print as JSON")
    .action((id: string, name: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const status = await sdk(!!opts.json).workspaces.serviceStatus(id, name);
        if (opts.json) return printJson(status);
        process.stdout.write(`${describeService(status)}\n`);
      }),
    );

  service
    .command("logs")
    .argument("<workspace>", "id or name")
    .argument("<name>", "service name")
    .description("the service's output (stdout and stderr interleaved)")
    .option("--tail-lines <n>", "the last N lines (default 100)", positiveInt("--tail-lines"))
    .option("--all", "everything the log still holds (it keeps the last 2 MiB)")
    .option("--json", "print as JSON")
    .action((id: string, name: string, opts: JsonOpt & { tailLines?: number; all?: boolean }) =>
      act(!!opts.json, async () => {
        const logs = await sdk(!!opts.json).workspaces.serviceLogs(id, name, {
          tailLines: opts.tailLines,
          all: !!opts.all,
        });
        if (opts.json) return printJson(logs);
        process.stdout.write(logs.text);
      }),
    );

  service
    .command("stop")
    .argument("<workspace>", "id or name")
    .argument("<name>", "service name")
    .description("stop a service (SIGTERM, then SIGKILL after 5 s) and unpublish its ports")
    .option("--json", "print as JSON")
    .action((id: string, name: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const stopped = await sdk(!!opts.json).workspaces.stopService(id, name);
        if (opts.json) return printJson(stopped);
        process.stdout.write(`${describeService(stopped)}\n`);
      }),
    );
}
