/** How the CLI words an error's fix: as the command line to run. */
import type { Fix, PyroError } from "../index.js";

export function cliHint(error: PyroError): string | undefined {
  return error.fix ? fixForCli(error.fix) : error.hint;
}

export function fixForCli(fix: Fix): string {
  switch (fix.kind) {
    case "start_workspace":
      return `start it with \`pyro workspace start ${fix.workspace}\` (its disk is kept)`;
    case "stop_workspace":
      return `stop it first with \`pyro workspace stop ${fix.workspace}\` (its disk is kept), or use \`pyro workspace file list/read\` while it runs`;
    case "find_workspace":
      return fix.known.length
        ? `known workspaces: ${fix.known.join(", ")}`
        : "there are no workspaces; create one with `pyro workspace create`";
    case "free_slot":
      return "stop or delete one of them (`pyro workspace stop ID`), or raise the limit with PYRO_MAX_RUNNING";
    case "delete_snapshot":
      return `delete it first (\`pyro workspace snapshot delete ${fix.workspace} ${fix.snapshot}\`) or choose another name`;
    case "reread_file":
      return "read the file again and regenerate the patch against its current content";
    case "stay_in_workspace":
      return "stay inside /workspace; symlinks that lead out are refused";
    case "find_command":
      return "see the workspace journal (`pyro workspace logs ID`)";
    case "run_setup":
      return `run \`pyro setup\` (as root) to install the host packages pyro needs${fix.packages?.length ? `, or: apt-get install ${fix.packages.join(" ")}` : ""}`;
    case "run_doctor":
      return `run \`pyro doctor\`${fix.note ? `; ${fix.note}` : " to check QEMU and acceleration"}`;
    case "pull_environment":
      return `${fix.note ?? "fix the cause"}, then run \`pyro env pull${fix.environment ? ` ${fix.environment}` : ""}\` again`;
    case "find_service":
      return fix.known.length
        ? `services of ${fix.workspace}: ${fix.known.join(", ")}`
        : `${fix.workspace} has no services; start one with \`pyro workspace service start\``;
    case "read_service_logs":
      return `see its log: \`pyro workspace service logs ${fix.workspace} ${fix.service} --all\``;
    case "create_with_network":
      return `the network policy is chosen at create: \`pyro workspace create --network-policy ${fix.policy}\``;
    case "free_host_port":
      return `host port ${fix.port} is taken: publish another, or only the guest port (pyro picks a free host port)`;
    case "find_shell":
      return fix.known.length
        ? `open shells of ${fix.workspace}: ${fix.known.join(", ")}`
        : `${fix.workspace} has no open shells; open one with \`pyro workspace shell open ${fix.workspace}\``;
    case "open_shell":
      return `open a new one with \`pyro workspace shell open ${fix.workspace}\``;
    case "find_secret":
      return fix.known.length
        ? `secrets of ${fix.workspace}: ${fix.known.join(", ")}`
        : `${fix.workspace} has no secrets; they are given at create (\`--secret NAME=VALUE\`, \`--secret-file NAME=PATH\`)`;
  }
}
