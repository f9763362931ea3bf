/** Bundled as dist/supervisor.js: the process that keeps one workspace's VM. */
import { supervisorMain } from "./supervisor.js";

// Disks, sockets and logs it creates are owner-only.
process.umask(0o077);
await supervisorMain(process.argv.slice(2));
