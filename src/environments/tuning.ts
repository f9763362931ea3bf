/**
 * Edits pyro makes to Debian's files in every image, each for a measured
 * reason. Every command runs through `sh -lc`, so the login profiles run on
 * every exec; Debian's spawn two programs (`id -u` in /etc/profile, `mesg n`
 * in root's ~/.profile), and under emulation each spawn costs ~40 ms: about
 * half of a `true` exec. The edits keep the behaviour and drop the spawns.
 */
import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, PyroError } from "../errors.js";

/** Sets `_pyro_euid` from the shell's own /proc status: shell built-ins only, no spawn. */
const EUID_PRELUDE = `# pyro: the effective uid without spawning id(1) (a spawn is slow under emulation)
_pyro_euid=
while read -r _pyro_key _pyro_ruid _pyro_euid _pyro_rest; do
  [ "$_pyro_key" = "Uid:" ] && break
  _pyro_euid=
done < /proc/self/status 2> /dev/null
unset _pyro_key _pyro_ruid _pyro_rest
`;

/** /etc/profile: `$(id -u)` becomes the uid read by the prelude (id(1) still the fallback). */
export function tuneEtcProfile(text: string): string {
  const uidTest = '"$(id -u)"';
  if (!text.includes(uidTest)) {
    throw new PyroError(
      ErrorCodes.EnvironmentBuildFailed,
      `/etc/profile changed upstream: no ${uidTest} to replace`,
    );
  }
  const tuned = text.replaceAll(uidTest, '"${_pyro_euid:-$(id -u)}"');
  return `${EUID_PRELUDE}\n${tuned.trimEnd()}\nunset _pyro_euid\n`;
}

/** root's ~/.profile: `mesg` only means something on a terminal; skip it (and its spawn) elsewhere. */
export function tuneRootProfile(text: string): string {
  const mesg = "mesg n 2> /dev/null || true";
  if (!text.includes(mesg)) {
    throw new PyroError(
      ErrorCodes.EnvironmentBuildFailed,
      `/root/.profile changed upstream: no "${mesg}" to guard`,
    );
  }
  return text.replace(mesg, `if [ -t 0 ]; then ${mesg}; fi`);
}

/** Apply every edit to an unpacked root filesystem. */
export function tuneRootFilesystem(rootDir: string): void {
  edit(path.join(rootDir, "etc", "profile"), tuneEtcProfile);
  edit(path.join(rootDir, "root", ".profile"), tuneRootProfile);
}

function edit(file: string, change: (text: string) => string): void {
  const mode = fs.statSync(file).mode & 0o7777;
  fs.writeFileSync(file, change(fs.readFileSync(file, "utf8")), { mode });
}
