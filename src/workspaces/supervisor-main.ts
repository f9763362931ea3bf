/** Bundled as dist/supervisor.js: the process that keeps one workspace's VM. */
import { supervisorMain } from "./supervisor.js";

await supervisorMain(process.argv.slice(2));
