import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tuneEtcProfile, tuneRootProfile } from "./tuning.js";

// Debian 12's files, as base-files 12.4 and bash 5.2 ship them (trimmed to the lines that matter).
const DEBIAN_PROFILE = `if [ "$(id -u)" -eq 0 ]; then
  PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
else
  PATH="/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
fi
export PATH
if [ "\${PS1-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    PS1='# '
  else
    PS1='$ '
  fi
fi
`;
const DEBIAN_ROOT_PROFILE = `if [ "$BASH" ]; then
  if [ -f ~/.bashrc ]; then
    . ~/.bashrc
  fi
fi

mesg n 2> /dev/null || true
`;

/** Run a profile with sh and print PATH and whether our variables leaked. */
function runProfile(profile: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyro-profile-"));
  const file = path.join(dir, "profile");
  fs.writeFileSync(file, profile);
  try {
    return execFileSync("sh", ["-c", `. ${file}; echo "$PATH|\${_pyro_euid-unset}"`], {
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin" },
    }).trim();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("tuneEtcProfile", () => {
  it("replaces every id spawn and keeps the PATH the original sets", () => {
    const tuned = tuneEtcProfile(DEBIAN_PROFILE);
    expect(tuned).not.toMatch(/"\$\(id -u\)"/);
    expect(tuned.match(/_pyro_euid:-\$\(id -u\)/g)).toHaveLength(2);
    expect(runProfile(tuned)).toBe(`${runProfile(DEBIAN_PROFILE).split("|")[0]}|unset`);
  });

  it("refuses a profile it does not recognise rather than skipping the edit", () => {
    expect(() => tuneEtcProfile("PATH=/bin\n")).toThrow(/changed upstream/);
  });
});

describe("tuneRootProfile", () => {
  it("runs mesg only on a terminal", () => {
    const tuned = tuneRootProfile(DEBIAN_ROOT_PROFILE);
    expect(tuned).toContain("if [ -t 0 ]; then mesg n 2> /dev/null || true; fi");
    expect(() => execFileSync("sh", ["-n", "-c", tuned])).not.toThrow();
  });

  it("refuses a profile without the mesg line", () => {
    expect(() => tuneRootProfile("true\n")).toThrow(/changed upstream/);
  });
});
