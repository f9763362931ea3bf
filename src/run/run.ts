/**
 * One-shot runs (contract §3): boot a fresh VM, run one command, stream its
 * output, delete the VM. The VM dies with this process if it is killed.
 */
import { launchVm, type LaunchContext } from "../boot/launch.js";
import { DEFAULT_ENVIRONMENT } from "../environments/catalog.js";
import { DEFAULTS, OUTPUT_LIMITS } from "../limits.js";
import { outputFields, prepareCommand, type CommandOutputFields } from "../protocol/command.js";

export interface RunOptions {
  environment?: string;
  /** A shell command line, or an argv. */
  command: string | string[];
  vcpuCount?: number;
  memMib?: number;
  timeoutSeconds?: number;
  /** Give the VM outbound network (policy "egress": through pyro's egress proxy). */
  network?: boolean;
  env?: Record<string, string>;
  maxOutputBytes?: number;
  onStdout?: (bytes: Buffer) => void;
  onStderr?: (bytes: Buffer) => void;
}

export interface RunResult extends CommandOutputFields {
  environment: string;
  command: string[];
  exit_code: number;
  signal: string | null;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  duration_ms: number;
  boot_ms: number;
  total_ms: number;
  accel: "kvm" | "tcg";
  vcpu_count: number;
  mem_mib: number;
  network_policy: "off" | "egress";
  /** The environment (or the guest runtime) was not cached: this run built or fetched it first. */
  environment_built: boolean;
}

export async function runOnce(ctx: LaunchContext, options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const environment = options.environment ?? DEFAULT_ENVIRONMENT;
  const { argv, timeoutMs } = prepareCommand(options.command, options.timeoutSeconds);
  const vcpus = options.vcpuCount ?? DEFAULTS.vcpuCount;
  const memMib = options.memMib ?? DEFAULTS.memMib;
  const network = options.network === true;
  const { vm, accel, built } = await launchVm(ctx, {
    environment,
    vcpus,
    memMib,
    ephemeral: true,
    ...(network ? { network: { allowHostPorts: [] } } : {}),
  });
  try {
    const output = await vm.agent.exec(
      {
        argv,
        cwd: "/workspace",
        env: options.env ?? {},
        timeout_ms: timeoutMs,
        max_output_bytes: options.maxOutputBytes ?? OUTPUT_LIMITS.streamBytes,
      },
      { onStdout: options.onStdout, onStderr: options.onStderr },
    );
    return {
      environment,
      command: typeof options.command === "string" ? [options.command] : options.command,
      exit_code: output.exit_code,
      signal: output.signal,
      ...outputFields(output),
      stdout_truncated: output.stdout_truncated,
      stderr_truncated: output.stderr_truncated,
      duration_ms: output.duration_ms,
      boot_ms: vm.bootMs,
      total_ms: Date.now() - started,
      accel: accel.accel,
      vcpu_count: vcpus,
      mem_mib: memMib,
      network_policy: network ? "egress" : "off",
      environment_built: built,
    };
  } finally {
    await vm.destroy();
  }
}
