/**
 * The `pyro` command line. Parsing and printing only: every operation is a
 * call into the SDK, whose payload `--json` prints unchanged.
 */
import { Command, CommanderError, Option } from "commander";
import {
  CATALOG,
  DEFAULTS,
  DEFAULT_ENVIRONMENT,
  ErrorCodes,
  PyroError,
  VERSION,
} from "../index.js";
import { act, positiveInt, positiveNumber, sdk } from "./common.js";
import { formatBytes, printJson, reportError, table } from "./output.js";
import { endProgress } from "./progress.js";
import { registerMcpCommands } from "./mcp.js";
import { registerHostCommands } from "./host.js";
import { registerWorkspaceCommands } from "./workspace.js";

export function buildProgram(passthrough: string[]): Command {
  const program = new Command();
  program
    .name("pyro")
    .description("Disposable, isolated Linux microVMs for coding agents, on your own machine")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  program
    .command("setup")
    .description(
      "install the host packages pyro needs (QEMU, mmdebstrap, busybox-static, …) with apt-get; idempotent",
    )
    .option("--json", "print the result as JSON")
    .action((opts: { json?: boolean }) =>
      act(!!opts.json, async () => {
        const result = await sdk(!!opts.json).setup();
        if (opts.json) return printJson(result);
        if (result.installed.length)
          process.stderr.write(`installed: ${result.installed.join(", ")}\n`);
        process.stderr.write(
          `host packages present: ${result.requirements
            .map((r) => r.debian_package)
            .filter((v, i, a) => a.indexOf(v) === i)
            .join(", ")}\n`,
        );
      }),
    );

  program
    .command("run")
    .description("boot a fresh VM, run one command in it, stream its output, delete the VM")
    .argument("[environment]", `environment (default ${DEFAULT_ENVIRONMENT})`)
    .option(
      "--vcpu-count <n>",
      `virtual CPUs (default ${DEFAULTS.vcpuCount})`,
      positiveInt("--vcpu-count"),
    )
    .option("--mem-mib <n>", `memory in MiB (default ${DEFAULTS.memMib})`, positiveInt("--mem-mib"))
    .option(
      "--timeout-seconds <n>",
      `kill the command after this long (default ${DEFAULTS.execTimeoutSeconds})`,
      positiveNumber("--timeout-seconds"),
    )
    .option(
      "--network",
      "give the VM outbound network (HTTP(S) through pyro's egress proxy; never the host or private ranges)",
    )
    .option("--json", "print the result as JSON instead of streaming output")
    .usage("[environment] [options] -- COMMAND…")
    .action(
      (
        environment: string | undefined,
        opts: {
          vcpuCount?: number;
          memMib?: number;
          timeoutSeconds?: number;
          network?: boolean;
          json?: boolean;
        },
      ) =>
        act(!!opts.json, async () => {
          if (passthrough.length === 0) {
            throw new PyroError(ErrorCodes.UsageError, "no command given", {
              hint: "usage: pyro run [ENV] -- COMMAND…",
            });
          }
          const json = !!opts.json;
          const result = await sdk(json).run({
            environment: environment ?? DEFAULT_ENVIRONMENT,
            command: passthrough,
            vcpuCount: opts.vcpuCount,
            memMib: opts.memMib,
            timeoutSeconds: opts.timeoutSeconds,
            network: !!opts.network,
            onStdout: json ? undefined : (bytes) => process.stdout.write(bytes),
            onStderr: json ? undefined : (bytes) => process.stderr.write(bytes),
          });
          if (json) {
            printJson(result);
          } else {
            endProgress();
            if (result.timed_out) process.stderr.write(`pyro: command timed out and was killed\n`);
            if (result.truncated)
              process.stderr.write(`pyro: output was truncated (limit per stream reached)\n`);
          }
          return result.exit_code;
        }),
    );

  const env = program.command("env").description("the environment catalog and cache");
  env
    .command("list")
    .description("catalog with installed / not installed")
    .option("--json", "print as JSON")
    .action((opts: { json?: boolean }) =>
      act(!!opts.json, async () => {
        const list = await sdk(!!opts.json).environments.list();
        if (opts.json) return printJson({ environments: list });
        const rows = [["NAME", "STATE", "SIZE", "DESCRIPTION"]];
        for (const e of list)
          rows.push([
            `${e.name}${e.default ? " (default)" : ""}`,
            e.state.replace("_", " "),
            formatBytes(e.size_bytes),
            e.description,
          ]);
        process.stdout.write(`${table(rows)}\n`);
      }),
    );
  env
    .command("pull")
    .description("build an environment from Debian's archive into the cache (progress on stderr)")
    .argument("<environment>", `one of: ${CATALOG.map((e) => e.name).join(", ")}`)
    .option("--force", "rebuild even if the cache holds a valid entry")
    .option("--json", "print the result as JSON")
    .action((name: string, opts: { force?: boolean; json?: boolean }) =>
      act(!!opts.json, async () => {
        const result = await sdk(!!opts.json).environments.pull(name, { force: !!opts.force });
        if (opts.json) return printJson(result);
        process.stderr.write(
          result.cached
            ? `${name} is already in the cache (${formatBytes(result.size_bytes)})\n`
            : `${name} built in ${(result.duration_ms / 1000).toFixed(1)}s (${formatBytes(result.size_bytes)})\n`,
        );
      }),
    );
  env
    .command("inspect")
    .description("manifest, sizes and package list of an environment")
    .argument("<environment>")
    .option("--json", "print as JSON")
    .action((name: string, opts: { json?: boolean }) =>
      act(!!opts.json, async () => {
        const info = await sdk(!!opts.json).environments.inspect(name);
        if (opts.json) return printJson(info);
        const m = info.manifest;
        const lines = [
          `name: ${info.name}`,
          `version: ${info.version}`,
          `state: ${info.state}`,
          `description: ${info.description}`,
        ];
        if (m) {
          lines.push(`built: ${m.built_at} in ${m.build_seconds}s from Debian ${m.debian_suite}`);
          lines.push(`kernel: ${m.kernel_package.name} ${m.kernel_package.version}`);
          for (const [name, a] of Object.entries(m.artifacts))
            lines.push(`${name}: ${formatBytes(a.size)} sha256:${a.sha256}`);
          lines.push(
            `packages (${m.packages.length}): ${m.packages.map((p) => `${p.name}=${p.version}`).join(" ")}`,
          );
        } else {
          lines.push(
            `packages (catalog): ${info.catalog_packages.join(" ") || "(minbase only)"}`,
            `not installed: run \`pyro env pull ${info.name}\``,
          );
        }
        process.stdout.write(`${lines.join("\n")}\n`);
      }),
    );
  env
    .command("prune")
    .description(
      "remove cache entries nothing uses: other versions, abandoned builds, orphan blobs",
    )
    .option("--all", "also remove installed environments no workspace uses")
    .option("--json", "print as JSON")
    .action((opts: { all?: boolean; json?: boolean }) =>
      act(!!opts.json, async () => {
        const result = await sdk(!!opts.json).environments.prune({ all: !!opts.all });
        if (opts.json) return printJson(result);
        process.stderr.write(
          `removed ${result.removed_environments.length} environment(s) and ${result.removed_blobs} blob(s), freed ${formatBytes(result.freed_bytes)}\n`,
        );
      }),
    );

  program
    .command("prepare")
    .description(
      "set the machine up once: build the environment, save a warm image, prove create → exec → delete",
    )
    .argument("[environment]", `environment (default ${DEFAULT_ENVIRONMENT})`)
    .option("--force", "make a new snapshot even if a valid one exists")
    .option(
      "--network",
      "prepare the networked variant (what creates with a network policy restore from)",
    )
    .option("--json", "print the result as JSON")
    .action(
      (
        environment: string | undefined,
        opts: { force?: boolean; network?: boolean; json?: boolean },
      ) =>
        act(!!opts.json, async () => {
          const result = await sdk(!!opts.json).prepare({
            environment,
            force: !!opts.force,
            network: !!opts.network,
          });
          if (opts.json) return printJson(result);
          const what = `${result.environment}${result.network ? " (network)" : ""}`;
          if (result.status === "already_warm") {
            process.stderr.write(
              `${what} is already warm (${formatBytes(result.snapshot_bytes)} snapshot); nothing to do\n`,
            );
          } else {
            const proof = result.proof!;
            process.stderr.write(
              `${what} prepared in ${(result.duration_ms / 1000).toFixed(1)}s (${result.reason}); ` +
                `cold boot ${result.cold_boot_ms} ms, warm create ${proof.create_ms} ms (${proof.boot_kind}), exec ${proof.exec_ms} ms, ` +
                `reset ${proof.reset_ms} ms (${proof.reset_boot_kind})\n`,
            );
          }
        }),
    );

  program
    .command("doctor")
    .description(
      "check QEMU, acceleration (KVM or software emulation), environments, and boot a guest",
    )
    .option("--skip-boot", "do not boot a guest (faster; capabilities not checked)")
    .option(
      "--environment <env>",
      "also report daily-loop readiness (warm, cold or stale) for this environment",
    )
    .option("--json", "print as JSON")
    .action((opts: { json?: boolean; skipBoot?: boolean; environment?: string }) =>
      act(!!opts.json, async () => {
        const report = await sdk(!!opts.json).doctor({
          skipBoot: !!opts.skipBoot,
          environment: opts.environment,
        });
        if (opts.json) {
          printJson(report);
        } else {
          const out = [
            `pyro ${report.pyro_version} on ${report.platform.os} (${report.platform.arch}, kernel ${report.platform.kernel}, node ${report.platform.node})`,
          ];
          for (const check of report.checks) {
            out.push(
              `${check.ok ? (check.note ? "note" : "ok  ") : "FAIL"} ${check.name}: ${check.detail}`,
            );
            if ((!check.ok || check.note) && check.fix) out.push(`     fix: ${check.fix}`);
          }
          out.push(
            `cache: ${report.cache.path} (${formatBytes(report.cache.bytes)} environments, ` +
              `${formatBytes(report.cache.warm_snapshot_bytes)} warm images); running VMs: ${report.running_vms}` +
              (report.standby_vms.length > 0
                ? `; standby VMs: ${report.standby_vms.map((v) => `${v.environment} (${v.state})`).join(", ")}`
                : ""),
          );
          process.stdout.write(`${out.join("\n")}\n`);
        }
        return report.ok ? 0 : 1;
      }),
    );

  registerWorkspaceCommands(program, passthrough);
  registerMcpCommands(program);
  registerHostCommands(program);
  program.addOption(new Option("--debug", "print stack traces on errors").hideHelp());
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // Everything after the first `--` is the guest command, untouched by option parsing.
  const split = argv.indexOf("--", 2);
  const own = split === -1 ? argv : argv.slice(0, split);
  const passthrough = split === -1 ? [] : argv.slice(split + 1);
  const program = buildProgram(passthrough);
  try {
    await program.parseAsync(own);
  } catch (error) {
    if (error instanceof CommanderError) {
      const ok =
        error.code === "commander.helpDisplayed" ||
        error.code === "commander.version" ||
        error.code === "commander.help";
      process.exitCode = ok ? 0 : 2;
      return;
    }
    process.exitCode = reportError(error, false);
  }
}

// Everything pyro writes under its state directories is owner-only (contract §10).
process.umask(0o077);
await main(process.argv);
