/**
 * `pyro workspace …`: parsing and printing only; every operation is one SDK
 * call whose payload `--json` prints unchanged.
 */
import fs from "node:fs";
import { Command, Option } from "commander";
import {
  DEFAULTS,
  DEFAULT_ENVIRONMENT,
  ErrorCodes,
  LIVE_SERVICE_STATES,
  PyroError,
  SEED_MODES,
  formatSummary,
  type SeedMode,
  type Workspace,
} from "../index.js";
import { act, collect, positiveInt, positiveNumber, sdk } from "./common.js";
import { registerDiskCommands } from "./disk.js";
import { registerServiceCommands } from "./service.js";
import { registerShellCommands } from "./shell.js";
import { printFileRead, printJson, table } from "./output.js";

interface JsonOpt {
  json?: boolean;
}

function parseLabels(pairs: string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new PyroError(ErrorCodes.UsageError, `label "${pair}" is not KEY=VALUE`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

function describe(ws: Workspace): string {
  const lines = [
    `id: ${ws.id}${ws.name ? ` (${ws.name})` : ""}`,
    `state: ${ws.state}${ws.failure_reason ? ` — ${ws.failure_reason}` : ""}`,
    `environment: ${ws.environment}, ${ws.vcpu_count} vCPU, ${ws.mem_mib} MiB`,
    `seed: ${ws.origin_kind}${ws.origin_ref ? ` ${ws.origin_ref}` : ""} (${ws.seed_files} files)`,
    `created: ${ws.created_at}, last activity: ${ws.last_activity_at}${ws.expires_at ? `, expires: ${ws.expires_at}` : ""}`,
  ];
  if (Object.keys(ws.labels).length)
    lines.push(
      `labels: ${Object.entries(ws.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
  const net = ws.network;
  lines.push(
    `network: ${net.policy}` +
      (net.guest_address
        ? `, guest ${net.guest_address}, egress through ${net.egress_proxy}`
        : "") +
      (net.allowed_host_ports.length
        ? `, host ports ${net.allowed_host_ports.join(", ")} at ${net.host_address}`
        : ""),
  );
  for (const p of net.published_ports)
    lines.push(
      `published: 127.0.0.1:${p.host_port} → guest ${p.guest_port} (service ${p.service})`,
    );
  if (ws.services.length)
    lines.push(`services: ${ws.services.map((s) => `${s.name} ${s.state}`).join(", ")}`);
  const shells = ws.shells.filter((s) => s.state === "running" || s.state === "exited");
  if (shells.length)
    lines.push(`shells: ${shells.map((s) => `${s.shell_id} ${s.state}`).join(", ")}`);
  if (ws.secrets.length) lines.push(`secrets: ${ws.secrets.join(", ")}`);
  lines.push(`commands run: ${ws.command_count}`);
  return lines.join("\n");
}

function readTextOption(text: string | undefined, file: string | undefined, what: string): string {
  if ((text === undefined) === (file === undefined)) {
    throw new PyroError(ErrorCodes.UsageError, `give exactly one of --${what} or --${what}-file`);
  }
  if (file !== undefined) {
    try {
      return fs.readFileSync(file === "-" ? 0 : file, "utf8");
    } catch (error) {
      throw new PyroError(
        ErrorCodes.UsageError,
        `cannot read ${file}: ${(error as Error).message}`,
      );
    }
  }
  return text!;
}

export function registerWorkspaceCommands(program: Command, passthrough: string[]): void {
  const ws = program
    .command("workspace")
    .description(
      "persistent workspaces: a VM with /workspace you can seed, run, edit, diff and export",
    );

  ws.command("create")
    .description("create and start a workspace")
    .argument("[environment]", `environment (default ${DEFAULT_ENVIRONMENT})`)
    .option(
      "--seed-path <path>",
      "seed /workspace from a directory (git-aware) or a .tar/.tar.gz/.tgz",
    )
    .addOption(
      new Option(
        "--seed-mode <mode>",
        "from a git checkout: tracked files, worktree (tracked + untracked-not-ignored; the default) or all files",
      ).choices(SEED_MODES),
    )
    .option("--include-git", "seed the checkout's .git too (history, branches)")
    .option("--name <name>", "a unique name usable wherever an id is")
    .option("--label <key=value>", "a label (repeatable)", collect)
    .option(
      "--vcpu-count <n>",
      `virtual CPUs (default ${DEFAULTS.vcpuCount})`,
      positiveInt("--vcpu-count"),
    )
    .option("--mem-mib <n>", `memory in MiB (default ${DEFAULTS.memMib})`, positiveInt("--mem-mib"))
    .option(
      "--ttl-seconds <n>",
      "delete the workspace after this long",
      positiveNumber("--ttl-seconds"),
    )
    .option(
      "--network-policy <policy>",
      "off (default: no network device), egress (outbound HTTP(S) through pyro's egress proxy), or egress+published-ports",
    )
    .option(
      "--allow-host-port <port>",
      "let the guest reach this port of the host's 127.0.0.1 at host.pyro.internal (10.0.2.254; repeatable; needs a network policy)",
      collect,
    )
    .option(
      "--secret <NAME=VALUE>",
      "a secret: a file under /run/pyro-secrets in the guest, [REDACTED] in all output (repeatable; NAME alone reads pyro's environment variable NAME, keeping the value out of the process list)",
      collect,
    )
    .option(
      "--secret-file <NAME=PATH>",
      "a secret read from a host file (at most 64 KiB of text; repeatable)",
      collect,
    )
    .option("--id-only", "print only the new id")
    .option("--json", "print the result as JSON")
    .action(
      (
        environment: string | undefined,
        opts: JsonOpt & {
          seedPath?: string;
          seedMode?: SeedMode;
          includeGit?: boolean;
          name?: string;
          label?: string[];
          vcpuCount?: number;
          memMib?: number;
          ttlSeconds?: number;
          networkPolicy?: string;
          allowHostPort?: string[];
          secret?: string[];
          secretFile?: string[];
          idOnly?: boolean;
        },
      ) =>
        act(!!opts.json, async () => {
          const created = await sdk(!!opts.json || !!opts.idOnly).workspaces.create({
            environment,
            seedPath: opts.seedPath,
            seedMode: opts.seedMode,
            includeGit: opts.includeGit,
            name: opts.name,
            labels: parseLabels(opts.label),
            vcpuCount: opts.vcpuCount,
            memMib: opts.memMib,
            ttlSeconds: opts.ttlSeconds,
            networkPolicy: opts.networkPolicy,
            allowHostPorts: opts.allowHostPort,
            secrets: opts.secret,
            secretFiles: opts.secretFile,
          });
          if (opts.json) return printJson(created);
          if (opts.idOnly) return void process.stdout.write(`${created.id}\n`);
          process.stdout.write(`${describe(created)}\n`);
          for (const s of created.seed_skipped)
            process.stderr.write(`seed: skipped ${s.path}: ${s.reason}\n`);
        }),
    );

  ws.command("list")
    .description("workspaces, most recently active first")
    .option("--json", "print as JSON")
    .action((opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const list = sdk(!!opts.json).workspaces.list();
        if (opts.json) return printJson({ workspaces: list });
        if (list.length === 0)
          return void process.stderr.write(
            "no workspaces; create one with `pyro workspace create`\n",
          );
        const rows = [
          [
            "ID",
            "NAME",
            "STATE",
            "ENVIRONMENT",
            "NETWORK",
            "SERVICES",
            "LAST ACTIVITY",
            "EXPIRES",
            "LABELS",
          ],
        ];
        for (const w of list) {
          const live = w.services.filter((s) => LIVE_SERVICE_STATES.includes(s.state));
          rows.push([
            w.id,
            w.name ?? "-",
            w.state,
            w.environment,
            w.network_policy,
            live.length ? live.map((s) => s.name).join(",") : "-",
            w.last_activity_at,
            w.expires_at ?? "-",
            Object.entries(w.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(",") || "-",
          ]);
        }
        process.stdout.write(`${table(rows)}\n`);
      }),
    );

  ws.command("status")
    .argument("<workspace>", "id or name")
    .description("one workspace's state and details")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const status = sdk(!!opts.json).workspaces.status(id);
        if (opts.json) return printJson(status);
        process.stdout.write(`${describe(status)}\n`);
      }),
    );

  ws.command("update")
    .argument("<workspace>", "id or name")
    .description("rename, or set and clear labels")
    .option("--name <name>", "new name")
    .option("--label <key=value>", "set a label (repeatable)", collect)
    .option("--clear-label <key>", "remove a label (repeatable)", collect)
    .option("--json", "print as JSON")
    .action(
      (id: string, opts: JsonOpt & { name?: string; label?: string[]; clearLabel?: string[] }) =>
        act(!!opts.json, async () => {
          const updated = await sdk(!!opts.json).workspaces.update(id, {
            name: opts.name,
            labels: parseLabels(opts.label),
            clearLabels: opts.clearLabel,
          });
          if (opts.json) return printJson(updated);
          process.stdout.write(`${describe(updated)}\n`);
        }),
    );

  for (const [verb, help] of [
    ["stop", "stop the VM (disk kept)"],
    ["start", "boot the workspace's disk again"],
  ] as const) {
    ws.command(verb)
      .argument("<workspace>", "id or name")
      .description(help)
      .option("--json", "print as JSON")
      .action((id: string, opts: JsonOpt) =>
        act(!!opts.json, async () => {
          const api = sdk(!!opts.json).workspaces;
          const result = verb === "stop" ? await api.stop(id) : await api.start(id);
          if (opts.json) return printJson(result);
          process.stderr.write(`${result.name ?? result.id}: ${result.state}\n`);
        }),
      );
  }

  ws.command("fork")
    .argument("<workspace>", "id or name")
    .description(
      "a new workspace starting from this one's current disk and, when it runs, its memory",
    )
    .option("--name <name>", "name of the new workspace")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt & { name?: string }) =>
      act(!!opts.json, async () => {
        const forked = await sdk(!!opts.json).workspaces.fork(id, { name: opts.name });
        if (opts.json) return printJson(forked);
        process.stdout.write(
          `${describe(forked)}\nforked from: ${forked.forked_from} (${forked.boot_kind === "warm" ? "memory and disk" : "disk"})\n`,
        );
      }),
    );

  ws.command("reset")
    .argument("<workspace>", "id or name")
    .description(
      "a fresh machine with /workspace equal to the baseline (or --snapshot); the journal starts over",
    )
    .option("--snapshot <name>", "restore this named snapshot instead of the baseline")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt & { snapshot?: string }) =>
      act(!!opts.json, async () => {
        const result = await sdk(!!opts.json).workspaces.reset(id, { snapshot: opts.snapshot });
        if (opts.json) return printJson(result);
        process.stderr.write(
          `${result.name ?? result.id}: reset to ${result.restored_from} (${result.boot_kind} boot, ${result.boot_ms} ms)\n`,
        );
      }),
    );

  const snapshot = ws
    .command("snapshot")
    .description("named copies of /workspace (baseline always exists)");
  snapshot
    .command("create")
    .argument("<workspace>", "id or name")
    .argument("<name>", "snapshot name")
    .option("--json", "print as JSON")
    .action((id: string, name: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const created = await sdk(!!opts.json).workspaces.createSnapshot(id, name);
        if (opts.json) return printJson(created);
        process.stderr.write(`snapshot ${created.name} saved\n`);
      }),
    );
  snapshot
    .command("list")
    .argument("<workspace>", "id or name")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const list = sdk(!!opts.json).workspaces.listSnapshots(id);
        if (opts.json) return printJson(list);
        const rows = [["NAME", "CREATED", "BYTES"]];
        for (const s of list.snapshots) rows.push([s.name, s.created_at, String(s.bytes)]);
        process.stdout.write(`${table(rows)}\n`);
      }),
    );
  snapshot
    .command("delete")
    .argument("<workspace>", "id or name")
    .argument("<name>", "snapshot name")
    .option("--json", "print as JSON")
    .action((id: string, name: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const deleted = sdk(!!opts.json).workspaces.deleteSnapshot(id, name);
        if (opts.json) return printJson(deleted);
        process.stderr.write(`snapshot ${deleted.name} deleted\n`);
      }),
    );

  ws.command("delete")
    .argument("<workspace>", "id or name")
    .description("delete the workspace and every host-side file it has")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const result = await sdk(!!opts.json).workspaces.delete(id);
        if (opts.json) return printJson(result);
        process.stderr.write(`deleted ${result.workspace_id}\n`);
      }),
    );

  registerServiceCommands(ws, passthrough);
  registerShellCommands(ws);
  registerDiskCommands(ws);

  ws.command("exec")
    .argument("<workspace>", "id or name")
    .description("run a command in /workspace (sh -lc); streams output, exits with its code")
    .option(
      "--timeout-seconds <n>",
      `kill the command after this long (default ${DEFAULTS.execTimeoutSeconds})`,
      positiveNumber("--timeout-seconds"),
    )
    .option(
      "--secret-env <NAME[=VAR]>",
      "give the command secret NAME as environment variable NAME (or VAR) (repeatable)",
      collect,
    )
    .option("--json", "print the result as JSON instead of streaming")
    .usage("<workspace> [options] -- COMMAND…")
    .action((id: string, opts: JsonOpt & { timeoutSeconds?: number; secretEnv?: string[] }) =>
      act(!!opts.json, async () => {
        if (passthrough.length === 0) {
          throw new PyroError(ErrorCodes.UsageError, "no command given", {
            hint: "usage: pyro workspace exec ID -- COMMAND…",
          });
        }
        const json = !!opts.json;
        const result = await sdk(json).workspaces.exec(id, passthrough, {
          timeoutSeconds: opts.timeoutSeconds,
          secretEnv: opts.secretEnv,
          onStdout: json ? undefined : (bytes) => process.stdout.write(bytes),
          onStderr: json ? undefined : (bytes) => process.stderr.write(bytes),
        });
        if (json) printJson(result);
        else {
          if (result.timed_out) process.stderr.write("pyro: command timed out and was killed\n");
          if (result.truncated)
            process.stderr.write("pyro: output was truncated (limit per stream reached)\n");
        }
        return result.exit_code;
      }),
    );

  ws.command("logs")
    .argument("<workspace>", "id or name")
    .description("the command journal")
    .option("--sequence <n>", "only command #N of the journal", positiveInt("--sequence"))
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt & { sequence?: number }) =>
      act(!!opts.json, async () => {
        const logs = sdk(!!opts.json).workspaces.logs(id, { sequence: opts.sequence });
        if (opts.json) return printJson(logs);
        for (const e of logs.entries) {
          process.stdout.write(
            `#${e.sequence} [exit ${e.exit_code}${e.timed_out ? ", timed out" : ""}, ${e.duration_ms} ms] ${e.command}\n`,
          );
          if (e.stdout)
            process.stdout.write(
              indent(e.stdout_encoding === "utf-8" ? e.stdout : "(binary output)"),
            );
          if (e.stderr)
            process.stdout.write(
              indent(e.stderr_encoding === "utf-8" ? e.stderr : "(binary output)"),
            );
        }
      }),
    );

  const file = ws.command("file").description("read, write and list files under /workspace");
  file
    .command("list")
    .argument("<workspace>", "id or name")
    .argument("[path]", "directory under /workspace", ".")
    .option("--recursive", "list subdirectories too")
    .option("--json", "print as JSON")
    .action((id: string, dir: string, opts: JsonOpt & { recursive?: boolean }) =>
      act(!!opts.json, async () => {
        const listing = await sdk(!!opts.json).workspaces.listFiles(id, dir, {
          recursive: !!opts.recursive,
        });
        if (opts.json) return printJson(listing);
        for (const e of listing.entries) {
          process.stdout.write(
            `${e.type === "directory" ? `${e.path}/` : e.type === "symlink" ? `${e.path} -> ${e.link_target}` : e.path}\n`,
          );
        }
        if (listing.truncated) process.stderr.write("pyro: listing truncated\n");
      }),
    );
  file
    .command("read")
    .argument("<workspace>", "id or name")
    .argument("<path>", "file under /workspace")
    .option(
      "--max-bytes <n>",
      `read at most this much (default ${DEFAULTS.fileReadBytes})`,
      positiveInt("--max-bytes"),
    )
    .option("--content-only", "print only the content")
    .option("--json", "print as JSON")
    .action(
      (
        id: string,
        filePath: string,
        opts: JsonOpt & { maxBytes?: number; contentOnly?: boolean },
      ) =>
        act(!!opts.json, async () => {
          const read = await sdk(!!opts.json).workspaces.readFile(id, filePath, {
            maxBytes: opts.maxBytes,
          });
          if (opts.json) return printJson(read);
          printFileRead(read, {
            contentOnly: opts.contentOnly,
            more: "use --max-bytes to read more",
          });
        }),
    );
  file
    .command("write")
    .argument("<workspace>", "id or name")
    .argument("<path>", "file under /workspace")
    .option("--text <text>", "the new content")
    .option("--text-file <file>", "read the new content from a host file (- for stdin)")
    .option("--json", "print as JSON")
    .action((id: string, filePath: string, opts: JsonOpt & { text?: string; textFile?: string }) =>
      act(!!opts.json, async () => {
        const content = readTextOption(opts.text, opts.textFile, "text");
        const written = await sdk(!!opts.json).workspaces.writeFile(id, filePath, content);
        if (opts.json) return printJson(written);
        process.stderr.write(`wrote ${written.bytes_written} bytes to ${written.path}\n`);
      }),
    );

  ws.command("patch")
    .description("apply patches")
    .command("apply")
    .argument("<workspace>", "id or name")
    .option("--patch <text>", "a unified diff")
    .option("--patch-file <file>", "read the unified diff from a host file (- for stdin)")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt & { patch?: string; patchFile?: string }) =>
      act(!!opts.json, async () => {
        const text = readTextOption(opts.patch, opts.patchFile, "patch");
        const applied = await sdk(!!opts.json).workspaces.applyPatch(id, text);
        if (opts.json) return printJson(applied);
        for (const f of applied.files) process.stdout.write(`${f.status} ${f.path}\n`);
      }),
    );

  ws.command("diff")
    .argument("<workspace>", "id or name")
    .description("/workspace against its baseline")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const diff = await sdk(!!opts.json).workspaces.diff(id);
        if (opts.json) return printJson(diff);
        process.stdout.write(diff.patch);
        for (const e of diff.entries.filter(
          (entry) => entry.kind !== "text" || entry.status === "mode_changed",
        )) {
          process.stdout.write(
            `${e.status} ${e.kind} ${e.path}${e.mode_before || e.mode_after ? ` (mode ${e.mode_before ?? "-"} -> ${e.mode_after ?? "-"})` : ""}\n`,
          );
        }
        if (!diff.changed) process.stderr.write("no changes since the baseline\n");
      }),
    );

  ws.command("summary")
    .argument("<workspace>", "id or name")
    .description(
      "one review since the last reset: commands, changed files, writes, patches, exports",
    )
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const summary = await sdk(!!opts.json).workspaces.summary(id);
        if (opts.json) return printJson(summary);
        process.stdout.write(formatSummary(summary));
      }),
    );

  ws.command("export")
    .argument("<workspace>", "id or name")
    .argument("<path>", "file or directory under /workspace")
    .requiredOption("--output <host-path>", "where to write it on the host (must not exist)")
    .option("--json", "print as JSON")
    .action((id: string, guestPath: string, opts: JsonOpt & { output: string }) =>
      act(!!opts.json, async () => {
        const exported = await sdk(!!opts.json).workspaces.export(id, guestPath, opts.output);
        if (opts.json) return printJson(exported);
        process.stderr.write(`exported ${exported.path} to ${exported.output}\n`);
        for (const s of exported.skipped) process.stderr.write(`skipped ${s.path}: ${s.reason}\n`);
      }),
    );

  ws.command("sync")
    .description("copy host content into a workspace")
    .command("push")
    .argument("<workspace>", "id or name")
    .argument("<source>", "host directory (git-aware) or archive")
    .option("--dest <path>", "destination under /workspace", "/workspace")
    .option("--json", "print as JSON")
    .action((id: string, source: string, opts: JsonOpt & { dest: string }) =>
      act(!!opts.json, async () => {
        const pushed = await sdk(!!opts.json).workspaces.syncPush(id, source, opts.dest);
        if (opts.json) return printJson(pushed);
        process.stderr.write(`pushed ${pushed.files} files to ${pushed.destination}\n`);
      }),
    );
}

function indent(text: string): string {
  return `${text
    .replace(/\n$/, "")
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n")}\n`;
}
