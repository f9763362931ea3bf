/**
 * What a restored guest must do that Node cannot: set the clock
 * (settimeofday) and reseed the kernel's random generator (ioctl
 * RNDRESEEDCRNG). Writing entropy to /dev/urandom only mixes it into the
 * input pool; until the next scheduled reseed (up to a minute away) two VMs
 * restored from one snapshot hand out the same random bytes. So after
 * writing it, the CRNG is reseeded at once.
 *
 * A perl process (perl-base is Essential in every Debian image) does both.
 * Starting perl costs ~150 ms (more with a cold page cache) under emulation,
 * so it starts at the first refresh (`pyro prepare` makes one before saving
 * its snapshot; a cold boot needs none) and then waits on a pipe: a snapshot
 * restores it waiting, and a refresh costs a line each way. Without perl the
 * clock is set with busybox and the reseed is left to the kernel's schedule
 * (said on the console).
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";

/** x86_64 numbers: SYS_settimeofday, and RNDRESEEDCRNG = _IO('R', 0x07). */
const PERL_SCRIPT = `
$| = 1;
open(my $rng, "<", "/dev/urandom") or die "open /dev/urandom: $!";
while (my $line = <STDIN>) {
  chomp $line;
  my $error = "";
  if ($line =~ /^\\d+$/) {
    syscall(164, pack("qq", $line, 0), 0) == 0 or $error .= "settimeofday: $! ";
  }
  ioctl($rng, 0x5207, 0) or $error .= "reseed: $!";
  print $error eq "" ? "ok\\n" : "error $error\\n";
}
`;
const BUSYBOX = "/opt/pyro/bin/busybox";
const PERL = "/usr/bin/perl";

let helper: ChildProcessWithoutNullStreams | undefined;
let pending: Promise<void> = Promise.resolve();
let enabled = false;

/** Only the agent inside a guest runs the helper (main.ts), never tests on the host. */
export function enableIdentityHelper(): void {
  enabled = true;
}

/** Start the helper if it is not running. */
function startIdentityHelper(): void {
  if (!enabled || helper || !fs.existsSync(PERL)) return;
  const child = spawn(PERL, ["-e", PERL_SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
  child.on("error", () => {
    if (helper === child) helper = undefined;
  });
  child.on("exit", () => {
    if (helper === child) helper = undefined;
  });
  child.stdin.on("error", () => {});
  child.stderr.resume();
  helper = child;
}

/**
 * Set the clock to `seconds` since the epoch (when given) and reseed the
 * kernel's CRNG. Resolves once both are done.
 */
export function refreshIdentity(seconds: number | undefined): Promise<void> {
  const run = pending.then(() => viaHelper(seconds)).catch(() => fallback(seconds));
  pending = run.catch(() => {});
  return run;
}

function viaHelper(seconds: number | undefined): Promise<void> {
  startIdentityHelper();
  const child = helper;
  if (!child || child.exitCode !== null) return Promise.reject(new Error("no helper"));
  return new Promise((resolve, reject) => {
    let answer = "";
    const onData = (chunk: Buffer) => {
      answer += chunk.toString("utf8");
      const newline = answer.indexOf("\n");
      if (newline === -1) return;
      child.stdout.off("data", onData);
      child.off("exit", onExit);
      const line = answer.slice(0, newline);
      if (line === "ok") resolve();
      else reject(new Error(line));
    };
    const onExit = () => reject(new Error("the identity helper exited"));
    child.stdout.on("data", onData);
    child.once("exit", onExit);
    child.stdin.write(`${seconds === undefined ? "-" : String(seconds)}\n`);
  });
}

async function fallback(seconds: number | undefined): Promise<void> {
  if (seconds !== undefined) {
    await exited(spawn(BUSYBOX, ["date", "-u", "-s", `@${seconds}`], { stdio: "ignore" }));
  }
  if (fs.existsSync(PERL)) {
    await exited(
      spawn(PERL, ["-e", 'open(my $r, "<", "/dev/urandom") or die; ioctl($r, 0x5207, 0) or die'], {
        stdio: "ignore",
      }),
    );
  } else {
    fs.writeFileSync(
      "/dev/console",
      "pyro-agent: no perl to reseed the random generator; it reseeds on its own within a minute\n",
    );
  }
}

function exited(child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve) => {
    child.on("error", () => resolve());
    child.on("close", () => resolve());
  });
}
