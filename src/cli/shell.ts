/**
 * `pyro workspace shell …`: open, write, read, signal, close, list.
 * Parsing and printing only; each is one SDK call whose payload `--json`
 * prints.
 */
import { InvalidArgumentError, type Command } from "commander";
import { BOUNDS, DEFAULTS, SHELL_SIGNALS, describeShell } from "../index.js";
import { act, collect, positiveInt, sdk } from "./common.js";
import { printJson, table } from "./output.js";

interface JsonOpt {
  json?: boolean;
}

function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${name} must be 0 or a positive integer`);
    return n;
  };
}

export function registerShellCommands(ws: Command): void {
  const shell = ws
    .command("shell")
    .description("interactive shells (a PTY in the guest) that you write to and read from");

  shell
    .command("open")
    .argument("<workspace>", "id or name")
    .description("open a login shell; prints its id")
    .option("--cwd <path>", "working directory in the guest (default /workspace)")
    .option("--cols <n>", `terminal width (default ${DEFAULTS.shellCols})`, positiveInt("--cols"))
    .option("--rows <n>", `terminal height (default ${DEFAULTS.shellRows})`, positiveInt("--rows"))
    .option(
      "--secret-env <NAME[=VAR]>",
      "give the shell secret NAME as environment variable NAME (or VAR) (repeatable)",
      collect,
    )
    .option("--id-only", "print only the shell's id")
    .option("--json", "print as JSON")
    .action(
      (
        id: string,
        opts: JsonOpt & {
          cwd?: string;
          cols?: number;
          rows?: number;
          secretEnv?: string[];
          idOnly?: boolean;
        },
      ) =>
        act(!!opts.json, async () => {
          const opened = await sdk(!!opts.json).workspaces.openShell(id, {
            cwd: opts.cwd,
            cols: opts.cols,
            rows: opts.rows,
            secretEnv: opts.secretEnv,
          });
          if (opts.json) return printJson(opened);
          if (opts.idOnly) return void process.stdout.write(`${opened.shell_id}\n`);
          process.stdout.write(`${describeShell(opened)}\n`);
        }),
    );

  shell
    .command("write")
    .argument("<workspace>", "id or name")
    .argument("<shell>", "shell id")
    .description("type into a shell (Enter is pressed after the text unless --no-append-newline)")
    .requiredOption("--input <text>", "what to type")
    .option("--no-append-newline", "do not press Enter after the text")
    .option("--json", "print as JSON")
    .action(
      (id: string, shellId: string, opts: JsonOpt & { input: string; appendNewline: boolean }) =>
        act(!!opts.json, async () => {
          const written = await sdk(!!opts.json).workspaces.writeShell(id, shellId, opts.input, {
            appendNewline: opts.appendNewline,
          });
          if (opts.json) return printJson(written);
          process.stderr.write(`wrote ${written.bytes_written} bytes to ${shellId}\n`);
        }),
    );

  shell
    .command("read")
    .argument("<workspace>", "id or name")
    .argument("<shell>", "shell id")
    .description("print a shell's output from a cursor; the next cursor goes to stderr")
    .option(
      "--cursor <n>",
      "where to start: 0, or the next cursor a read gave (default 0)",
      nonNegativeInt("--cursor"),
    )
    .option(
      "--max-chars <n>",
      `at most this many characters (default ${DEFAULTS.shellMaxChars})`,
      positiveInt("--max-chars"),
    )
    .option(
      "--plain",
      "what a person would see: escape sequences interpreted, \\r and backspaces applied",
    )
    .option(
      "--wait-for-idle-ms <n>",
      `first wait until the shell has been quiet this long (${DEFAULTS.shellIdleMs} works well; at most ${BOUNDS.shellIdleMs.max})`,
      nonNegativeInt("--wait-for-idle-ms"),
    )
    .option("--json", "print as JSON")
    .action(
      (
        id: string,
        shellId: string,
        opts: JsonOpt & {
          cursor?: number;
          maxChars?: number;
          plain?: boolean;
          waitForIdleMs?: number;
        },
      ) =>
        act(!!opts.json, async () => {
          const read = await sdk(!!opts.json).workspaces.readShell(id, shellId, {
            cursor: opts.cursor,
            maxChars: opts.maxChars,
            plain: !!opts.plain,
            waitForIdleMs: opts.waitForIdleMs,
          });
          if (opts.json) return printJson(read);
          process.stdout.write(read.text);
          if (opts.plain && read.text && !read.text.endsWith("\n")) process.stdout.write("\n");
          const notes = [`next cursor: ${read.next_cursor}`, `shell ${read.state}`];
          if (read.dropped_bytes)
            notes.push(`${read.dropped_bytes} bytes dropped before cursor ${read.cursor}`);
          if (read.truncated)
            notes.push(opts.plain ? "cut to its latest part" : "more output waits");
          if (!read.idle) notes.push("still printing");
          process.stderr.write(`pyro: ${notes.join("; ")}\n`);
        }),
    );

  shell
    .command("signal")
    .argument("<workspace>", "id or name")
    .argument("<shell>", "shell id")
    .description("signal what runs in the shell's foreground (Ctrl-C is INT)")
    .option("--signal <name>", `${SHELL_SIGNALS.join(", ")} (default INT)`, "INT")
    .option("--json", "print as JSON")
    .action((id: string, shellId: string, opts: JsonOpt & { signal: string }) =>
      act(!!opts.json, async () => {
        const sent = await sdk(!!opts.json).workspaces.signalShell(id, shellId, opts.signal);
        if (opts.json) return printJson(sent);
        process.stderr.write(`sent SIG${sent.signal} to process group ${sent.process_group}\n`);
      }),
    );

  shell
    .command("close")
    .argument("<workspace>", "id or name")
    .argument("<shell>", "shell id")
    .description("hang the shell up (what it runs gets SIGHUP, then SIGKILL after 2 s)")
    .option("--json", "print as JSON")
    .action((id: string, shellId: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const closed = await sdk(!!opts.json).workspaces.closeShell(id, shellId);
        if (opts.json) return printJson(closed);
        process.stdout.write(`${describeShell(closed)}\n`);
      }),
    );

  shell
    .command("list")
    .argument("<workspace>", "id or name")
    .description("the workspace's shells: live, exited, closed, and those that ended with its VM")
    .option("--json", "print as JSON")
    .action((id: string, opts: JsonOpt) =>
      act(!!opts.json, async () => {
        const result = sdk(!!opts.json).workspaces.listShells(id);
        if (opts.json) return printJson(result);
        if (result.shells.length === 0)
          return void process.stderr.write(
            "no shells; open one with `pyro workspace shell open`\n",
          );
        const rows = [["SHELL", "STATE", "CWD", "OPENED", "ENDED"]];
        for (const s of result.shells) {
          rows.push([
            s.shell_id,
            s.state,
            s.cwd,
            s.opened_at,
            s.closed_at ? `${s.closed_at} (${s.end_reason ?? ""})` : "-",
          ]);
        }
        process.stdout.write(`${table(rows)}\n`);
      }),
    );
}
