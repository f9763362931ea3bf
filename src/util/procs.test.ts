import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { processRunning, statField } from "./procs.js";
import { findExecutable } from "./which.js";

// A process whose main thread has exited (a zombie) while another thread
// still runs: how a killed QEMU looks while it unmaps its memory, before its
// files (and published ports) are closed.
const ZOMBIE_LEADER = `
import ctypes, threading, time
threading.Thread(target=lambda: time.sleep(30)).start()
print("ready", flush=True)
ctypes.CDLL(None).pthread_exit(None)
`;

describe("processRunning", () => {
  it("is true for this process", () => {
    expect(processRunning(process.pid)).toBe(true);
  });

  const python = findExecutable("python3");
  it.skipIf(!python)(
    "counts a process whose main thread is a zombie but another runs",
    async () => {
      const child = spawn(python!, ["-c", ZOMBIE_LEADER], { stdio: ["ignore", "pipe", "inherit"] });
      try {
        await once(child.stdout, "data");
        const leaderGone = await waitFor(() => statField(child.pid!, 3) === "Z");
        expect(leaderGone).toBe(true);
        expect(processRunning(child.pid!)).toBe(true);
        child.kill("SIGKILL");
        await once(child, "exit");
        expect(processRunning(child.pid!)).toBe(false);
      } finally {
        child.kill("SIGKILL");
      }
    },
  );
});

async function waitFor(predicate: () => boolean): Promise<boolean> {
  for (let i = 0; i < 100 && !predicate(); i++) await new Promise((r) => setTimeout(r, 20));
  return predicate();
}
