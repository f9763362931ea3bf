/**
 * One command in a fresh, disposable VM: boot, run, delete. Nothing persists.
 *
 *   node --import tsx examples/run-once.ts
 */
import { Pyro } from "pyro-mcp";

const pyro = new Pyro();
const result = await pyro.run({
  environment: "debian:12",
  command: "uname -sr; . /etc/os-release; echo $PRETTY_NAME",
});
console.log(`exit ${result.exit_code} after ${result.duration_ms} ms`);
process.stdout.write(result.stdout);
