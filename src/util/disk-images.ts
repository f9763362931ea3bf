import fs from "node:fs";
import path from "node:path";
import { ErrorCodes, type ErrorCode } from "../errors.js";
import { runCommand } from "./process.js";

/**
 * mkfs.ext4 -d builds the filesystem from a directory without loop mounts.
 * The raw image is sparse; `qemu-img convert` drops the zeros into a compact
 * qcow2 that serves as the read-only base under every VM's overlay.
 */
export async function buildExt4Image(
  sourceDir: string,
  rawPath: string,
  outputPath: string | undefined,
  label: string,
  sizeMib: number,
): Promise<void> {
  fs.rmSync(rawPath, { force: true });
  await runCommand(
    "mkfs.ext4",
    [
      "-q",
      "-F",
      "-L",
      label,
      "-d",
      sourceDir,
      "-E",
      "lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0",
      "-m",
      "0",
      rawPath,
      `${sizeMib}M`,
    ],
    { errorCode: ErrorCodes.EnvironmentBuildFailed },
  );
  if (outputPath === undefined) return;
  await runCommand("qemu-img", ["convert", "-O", "qcow2", rawPath, outputPath], {
    errorCode: ErrorCodes.EnvironmentBuildFailed,
  });
  fs.rmSync(rawPath, { force: true });
}

/**
 * A raw copy of a qcow2 overlay over its base, the chain pinned: qemu-img
 * reads exactly these two files, whatever the overlay's header names as its
 * backing file. Sparse: holes stay holes. QEMU's image locking makes this
 * fail while a VM has the overlay open for writing.
 */
export async function convertOverlayToRaw(
  overlay: string,
  base: string,
  output: string,
  options: { errorCode: ErrorCode; timeoutMs?: number },
): Promise<void> {
  // An absolute path: "name:..." alone could be taken for a protocol (nbd:, json:).
  if (!path.isAbsolute(output)) throw new Error(`not an absolute path: ${output}`);
  const file = (filename: string) => ({ driver: "file", filename });
  const chain = {
    driver: "qcow2",
    file: file(overlay),
    backing: { driver: "qcow2", file: file(base), backing: null },
  };
  await runCommand("qemu-img", ["convert", "-O", "raw", `json:${JSON.stringify(chain)}`, output], {
    errorCode: options.errorCode,
    timeoutMs: options.timeoutMs ?? 30 * 60_000,
  });
}
