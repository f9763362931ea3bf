/** Shells: interactive PTY sessions in a workspace (a REPL, a debugger, a prompt, top). */
import * as z from "zod";
import { BOUNDS, DEFAULTS, SHELL_SIGNALS, type ShellRead, describeShell } from "../../index.js";
import {
  CHANGES_WORKSPACE,
  DESTRUCTIVE,
  defineWorkspaceTool,
  json,
  loose,
  secretEnvParam,
  type Note,
} from "../tool.js";

const shellId = z.string().min(1).describe("the shell's id (sh_…), as shell_open returned it");

const shellOutput = loose({
  workspace_id: z.string(),
  shell_id: z.string(),
  state: z.string(),
});

/** What a read says besides its text: where to go on from (its fields), and anything lost or cut (notes). */
function readSummary(read: ShellRead): { line: string; notes: Note[] } {
  const fields = [`next_cursor ${read.next_cursor}`, `shell ${read.state}`];
  if (read.exit_code !== null) fields.push(`exit code ${read.exit_code}`);
  return {
    line: `[${fields.join("; ")}]`,
    notes: [
      read.screen === "alternate" &&
        "a full-screen program holds the screen: the text is its current screen",
      read.dropped_bytes > 0 &&
        `${read.dropped_bytes} bytes of older output were dropped before this read (the guest keeps the latest output only)`,
      read.truncated &&
        (read.plain
          ? "the text was cut to its latest part; read with plain false from an earlier cursor to page through everything"
          : "more output waits: read again from next_cursor"),
      !read.idle &&
        "the shell was still printing when the wait ended: read again from next_cursor for the rest",
    ],
  };
}

export const shellOpen = defineWorkspaceTool({
  name: "shell_open",
  title: "Open a shell",
  description: () =>
    `Open an interactive login shell (\`bash -l\` as root, TERM xterm-256color) on a terminal in the workspace, for anything that needs one: a REPL, a debugger, a program that asks questions, a pager or top. Returns its shell_id. Type with shell_write, read what it shows with shell_read. Terminal ${DEFAULTS.shellCols}×${DEFAULTS.shellRows} unless told; starts in /workspace. For plain one-off commands workspace_exec is simpler.`,
  input: () => ({
    cwd: z.string().optional().describe("working directory in the guest (default /workspace)"),
    cols: z
      .number()
      .int()
      .min(BOUNDS.shellCols.min)
      .max(BOUNDS.shellCols.max)
      .optional()
      .describe(`terminal width (default ${DEFAULTS.shellCols})`),
    rows: z
      .number()
      .int()
      .min(BOUNDS.shellRows.min)
      .max(BOUNDS.shellRows.max)
      .optional()
      .describe(`terminal height (default ${DEFAULTS.shellRows})`),
    secret_env: secretEnvParam,
  }),
  gated: { secret_env: "secrets" },
  output: shellOutput,
  annotations: CHANGES_WORKSPACE,
  run: async (id, args, ctx) => {
    const opened = await ctx.pyro.workspaces.openShell(id, {
      cwd: args.cwd,
      cols: args.cols,
      rows: args.rows,
      secretEnv: args.secret_env,
    });
    return json(opened, `opened shell ${describeShell(opened)}; read its prompt with shell_read`);
  },
});

export const shellRead = defineWorkspaceTool({
  name: "shell_read",
  title: "Read a shell",
  description: () =>
    `Read what a shell printed since cursor (0 at first, then the next_cursor of the previous read). plain (default true) gives what a person would see on the terminal: colours and escape sequences interpreted, carriage returns and backspaces applied; while a full-screen program (less, top, vim) runs it gives its screen. The call first waits until the shell has been quiet for wait_for_idle_ms (default ${DEFAULTS.shellIdleMs}; at most ${DEFAULTS.shellReadWaitSeconds} s in all). Output is kept in the guest even when nobody reads; the result says when older output was dropped.`,
  input: () => ({
    shell_id: shellId,
    cursor: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("where to read from: 0, or the next_cursor a read returned (default 0)"),
    plain: z
      .boolean()
      .optional()
      .describe("render as a person would see it (default true); false gives raw terminal output"),
    wait_for_idle_ms: z
      .number()
      .int()
      .min(0)
      .max(BOUNDS.shellIdleMs.max)
      .optional()
      .describe(
        `wait until the shell has been quiet this long first (default ${DEFAULTS.shellIdleMs}; 0 reads at once)`,
      ),
    max_chars: z
      .number()
      .int()
      .min(BOUNDS.shellMaxChars.min)
      .max(BOUNDS.shellMaxChars.max)
      .optional()
      .describe(`at most this many characters (default ${DEFAULTS.shellMaxChars})`),
  }),
  output: loose({
    shell_id: z.string(),
    text: z.string(),
    next_cursor: z.number(),
    state: z.string(),
    truncated: z.boolean(),
    dropped_bytes: z.number(),
  }),
  annotations: { ...CHANGES_WORKSPACE, readOnlyHint: true, idempotentHint: false },
  run: async (id, args, ctx) => {
    const read = await ctx.pyro.workspaces.readShell(id, args.shell_id, {
      cursor: args.cursor,
      plain: args.plain ?? true,
      waitForIdleMs: args.wait_for_idle_ms ?? DEFAULTS.shellIdleMs,
      maxChars: args.max_chars,
    });
    const summary = readSummary(read);
    return json(
      read,
      `${read.text}${read.text.endsWith("\n") || !read.text ? "" : "\n"}${summary.line}`,
      summary.notes,
    );
  },
});

export const shellWrite = defineWorkspaceTool({
  name: "shell_write",
  title: "Type into a shell",
  description: () =>
    "Type text into a shell, as at a keyboard; Enter is pressed after it unless append_newline is false. Keys are characters: Ctrl-D is \\u0004, Escape \\u001b, arrow up \\u001b[A. To interrupt a running program use shell_signal (INT is Ctrl-C). Then read the result with shell_read.",
  input: () => ({
    shell_id: shellId,
    input: z
      .string()
      .describe("what to type, as keys: text, or control characters such as \\u0004 (Ctrl-D)"),
    append_newline: z.boolean().optional().describe("press Enter after the text (default true)"),
  }),
  output: shellOutput,
  annotations: DESTRUCTIVE,
  run: async (id, args, ctx) => {
    const written = await ctx.pyro.workspaces.writeShell(id, args.shell_id, args.input, {
      appendNewline: args.append_newline ?? true,
    });
    return json(
      written,
      `typed ${written.bytes_written} bytes into ${written.shell_id}; read the result with shell_read`,
    );
  },
});

export const shellSignal = defineWorkspaceTool({
  name: "shell_signal",
  title: "Signal a shell's program",
  description: () =>
    "Send a signal to the program running in the shell's foreground (the shell itself when none runs): INT is Ctrl-C, TERM asks it to end, HUP hangs it up, KILL ends it at once.",
  input: () => ({
    shell_id: shellId,
    signal: z
      .enum(SHELL_SIGNALS)
      .optional()
      .describe(
        "INT (Ctrl-C, the default), TERM (ask to end), HUP (hang up) or KILL (end at once)",
      ),
  }),
  output: shellOutput,
  annotations: DESTRUCTIVE,
  run: async (id, args, ctx) => {
    const sent = await ctx.pyro.workspaces.signalShell(id, args.shell_id, args.signal ?? "INT");
    return json(
      sent,
      `sent SIG${sent.signal} to process group ${sent.process_group} of ${sent.shell_id}`,
    );
  },
});

export const shellClose = defineWorkspaceTool({
  name: "shell_close",
  title: "Close a shell",
  description: () =>
    "Close a shell: what it runs is hung up (SIGHUP, then SIGKILL after 2 s). Its output can no longer be read. Shells also end when the workspace is reset, stopped or deleted.",
  input: () => ({ shell_id: shellId }),
  output: shellOutput,
  annotations: DESTRUCTIVE,
  run: async (id, args, ctx) => {
    const closed = await ctx.pyro.workspaces.closeShell(id, args.shell_id);
    return json(closed, `closed shell ${describeShell(closed)}`);
  },
});
