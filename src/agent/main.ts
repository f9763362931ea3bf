/**
 * The pyro guest agent: runs inside the VM (started by /opt/pyro/init) and
 * serves the framed protocol of src/protocol over a virtio-serial port.
 * Bundled with everything it needs; the shell module (a PTY and a terminal
 * emulator) is a chunk of its own, loaded on the first shell_open.
 */
import fs from "node:fs";
import { Readable } from "node:stream";
import { enableIdentityHelper } from "./identity-helper.js";
import { AgentServer } from "./server.js";

const PORT_NAME = "org.pyro.agent";

/** The device of our virtio-serial port. No udev in the guest, so no /dev/virtio-ports symlinks: ask sysfs. */
function findPort(): string {
  if (process.env.PYRO_AGENT_PORT) return process.env.PYRO_AGENT_PORT;
  const sysfs = "/sys/class/virtio-ports";
  for (const entry of fs.readdirSync(sysfs)) {
    try {
      if (fs.readFileSync(`${sysfs}/${entry}/name`, "utf8").trim() === PORT_NAME)
        return `/dev/${entry}`;
    } catch {
      // a port without a name
    }
  }
  throw new Error(`no virtio-serial port named ${PORT_NAME}`);
}

/**
 * Reads the port without ever ending: while no host is connected (between
 * two host processes, or right after a snapshot is restored) a read returns
 * 0 bytes at once, which a file stream would take for end of file. We wait
 * a moment and read again instead.
 */
class PortReader extends Readable {
  private readonly buffer = Buffer.allocUnsafe(64 * 1024);

  constructor(private readonly fd: number) {
    super();
  }

  override _read(): void {
    fs.read(this.fd, this.buffer, 0, this.buffer.length, null, (error, bytesRead) => {
      if (error) {
        this.destroy(error);
      } else if (bytesRead === 0) {
        setTimeout(() => this._read(), 20);
      } else {
        this.push(Buffer.from(this.buffer.subarray(0, bytesRead)));
      }
    });
  }
}

function main(): void {
  enableIdentityHelper();
  // virtio-serial ports accept a single open, so one fd serves both directions.
  const fd = fs.openSync(findPort(), "r+");
  const input = new PortReader(fd);
  const output = fs.createWriteStream("", { fd, autoClose: false });
  const server = new AgentServer(input, output);
  server.on("fatal", (error: Error) => {
    // A broken stream cannot be resynchronised; init restarts us with a fresh port.
    process.stderr.write(`pyro-agent: ${error.message}\n`);
    process.exit(1);
  });
  server.start();
}

main();
