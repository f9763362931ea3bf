/** Bundled as dist/supervisor.js: the process that keeps one workspace's VM (or a standby VM). */
import type { PyroPaths } from "../config/paths.js";
import type { StandbySlot } from "./standby-pool.js";
import { runStandby } from "./standby-supervisor.js";
import { runSupervisor } from "./workspace-supervisor.js";

/**
 * `supervisor.js <paths-json> <workspace-id> [--after-go]`, or
 * `supervisor.js <paths-json> --standby <slot-json>`. With --after-go it
 * starts up, then waits for "go" on stdin before reading the workspace's
 * record (a fork: its starter copies the parent meanwhile).
 */
async function supervisorMain(argv: string[]): Promise<void> {
  const [pathsJson, id, slotJson] = argv;
  if (!pathsJson || !id || (id === "--standby" && !slotJson)) {
    process.stderr.write(
      "usage: supervisor <paths-json> <workspace-id> | <paths-json> --standby <slot-json>\n",
    );
    process.exit(2);
  }
  const paths = JSON.parse(pathsJson) as PyroPaths;
  if (id === "--standby") {
    await runStandby(paths, JSON.parse(slotJson!) as StandbySlot);
    return;
  }
  // The starter reads one JSON line from our stdout, then goes away.
  process.stdout.on("error", () => {});
  if (slotJson === "--after-go" && !(await goSaid())) return;
  await runSupervisor(paths, id, (ready) => {
    process.stdout.write(`${JSON.stringify(ready)}\n`);
    if (!ready.ok) process.exitCode = 1;
  });
}

/** True once stdin says "go"; false if it ends first (the starter gave up). */
function goSaid(): Promise<boolean> {
  return new Promise((resolve) => {
    let said = "";
    process.stdin.on("data", (chunk: Buffer) => {
      said += chunk.toString("utf8");
      if (said.startsWith("go\n")) {
        process.stdin.destroy();
        resolve(true);
      }
    });
    process.stdin.on("end", () => resolve(false));
    process.stdin.on("error", () => resolve(false));
  });
}

// Disks, sockets and logs it creates are owner-only.
process.umask(0o077);
await supervisorMain(process.argv.slice(2));
