/** Exec handles: progress while a wait lasts (throttled, latest line), aborts, and line cleanup. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WorkspaceExecResult } from "../workspaces/payloads.js";
import { EXEC_PROGRESS, ExecHandles, latestLine, type ExecProgress } from "./exec-handles.js";

/** A command whose output and end the test drives. */
function controlled() {
  let out: (bytes: Buffer) => void = () => {};
  let err: (bytes: Buffer) => void = () => {};
  let finish: (result: WorkspaceExecResult) => void = () => {};
  const runner = (onStdout: (b: Buffer) => void, onStderr: (b: Buffer) => void) => {
    out = onStdout;
    err = onStderr;
    return new Promise<WorkspaceExecResult>((resolve) => (finish = resolve));
  };
  return {
    runner,
    stdout: (text: string) => out(Buffer.from(text)),
    stderr: (text: string) => err(Buffer.from(text)),
    finish: (stdout = "") =>
      finish({
        workspace_id: "ws_1",
        sequence: 1,
        command: "cmd",
        cwd: "/workspace",
        exit_code: 0,
        stdout,
        stderr: "",
        stdout_encoding: "utf-8",
        stderr_encoding: "utf-8",
        timed_out: false,
        truncated: false,
        duration_ms: 1,
      }),
  };
}

describe("ExecHandles progress", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reports after a second, on new output at most once a second, and on silence every 5 s", async () => {
    const handles = new ExecHandles();
    const cmd = controlled();
    const { command_id } = handles.start("ws_1", "cmd", cmd.runner);
    const reports: ExecProgress[] = [];
    const waiting = handles.wait(command_id, 20_000, { onProgress: (p) => reports.push(p) });

    await vi.advanceTimersByTimeAsync(EXEC_PROGRESS.firstAfterMs - 300);
    expect(reports).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(300);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ command_id, latest_line: null, output_bytes: 0 });

    // A burst of output: one report, within the next second.
    cmd.stdout("compiling a\n");
    cmd.stdout("compiling b\n");
    await vi.advanceTimersByTimeAsync(EXEC_PROGRESS.minIntervalMs);
    expect(reports).toHaveLength(2);
    expect(reports[1]).toMatchObject({ latest_line: "compiling b", output_bytes: 24 });

    // The latest line comes from whichever stream printed last.
    cmd.stderr("warning: x\n");
    await vi.advanceTimersByTimeAsync(EXEC_PROGRESS.minIntervalMs);
    expect(reports.at(-1)?.latest_line).toBe("warning: x");
    const afterOutput = reports.length;

    // Silence: a heartbeat every 5 s, not every tick.
    await vi.advanceTimersByTimeAsync(EXEC_PROGRESS.heartbeatMs - 500);
    expect(reports).toHaveLength(afterOutput);
    await vi.advanceTimersByTimeAsync(600);
    expect(reports).toHaveLength(afterOutput + 1);
    expect(reports.at(-1)?.latest_line).toBe("warning: x");

    const elapsed = reports.map((r) => r.elapsed_ms);
    expect([...elapsed].sort((a, b) => a - b)).toEqual(elapsed);

    cmd.finish("done\n");
    const status = await waiting;
    expect(status.status).toBe("completed");
    const count = reports.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(reports).toHaveLength(count);
  });

  it("returns a running status when the wait ends, and sends nothing for a quick command", async () => {
    const handles = new ExecHandles();
    const quick = controlled();
    const started = handles.start("ws_1", "quick", quick.runner);
    const reports: ExecProgress[] = [];
    const waiting = handles.wait(started.command_id, 20_000, {
      onProgress: (p) => reports.push(p),
    });
    await vi.advanceTimersByTimeAsync(200);
    quick.finish("ok\n");
    expect((await waiting).status).toBe("completed");
    expect(reports).toHaveLength(0);

    const slow = controlled();
    const long = handles.start("ws_1", "slow", slow.runner);
    const early = handles.wait(long.command_id, 2_500, { onProgress: (p) => reports.push(p) });
    await vi.advanceTimersByTimeAsync(2_500);
    expect((await early).status).toBe("running");
    expect(reports.length).toBeGreaterThan(0);
  });

  it("ends a wait when its signal aborts; the command keeps running", async () => {
    const handles = new ExecHandles();
    const cmd = controlled();
    const { command_id } = handles.start("ws_1", "cmd", cmd.runner);
    const abort = new AbortController();
    const waiting = handles.wait(command_id, 20_000, { signal: abort.signal });
    await vi.advanceTimersByTimeAsync(100);
    abort.abort();
    expect((await waiting).status).toBe("running");
    cmd.finish("later\n");
    expect(await handles.wait(command_id, 1000)).toMatchObject({
      status: "completed",
      stdout: "later\n",
    });
  });
});

describe("latestLine", () => {
  it("takes the last non-blank line, without escape sequences or carriage-return redraws", () => {
    expect(latestLine("a\nb\n\n  \n")).toBe("b");
    expect(latestLine("\x1b[32mok\x1b[0m done\n")).toBe("ok done");
    expect(latestLine("progress 10%\rprogress 90%")).toBe("progress 90%");
    expect(latestLine("\x1b]0;title\x07shown\n")).toBe("shown");
    expect(latestLine("")).toBeNull();
    expect(latestLine("\n\n")).toBeNull();
  });

  it("clips a long line", () => {
    const line = latestLine("x".repeat(1000))!;
    expect(line).toHaveLength(EXEC_PROGRESS.lineChars);
    expect(line.endsWith("…")).toBe(true);
  });
});

describe("ExecHandles scoping", () => {
  it("finds a command only in its own workspace when one is named", async () => {
    const handles = new ExecHandles();
    const cmd = controlled();
    const { command_id } = handles.start("ws_1", "cmd", cmd.runner);
    await expect(handles.wait(command_id, 0, { workspaceId: "vm_2" })).rejects.toMatchObject({
      code: "command_not_found",
      fix: { kind: "find_command", running: [] },
    });
    cmd.finish("done\n");
    const status = await handles.wait(command_id, 1000, { workspaceId: "ws_1" });
    expect(status).toMatchObject({ status: "completed", stdout: "done\n" });
  });
});
