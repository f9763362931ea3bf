/**
 * The supervisor's watch over published ports (contract §4: a published
 * port lives as long as its service).
 */
import { serviceIsLive } from "../protocol/messages.js";
import type { WorkspaceStore } from "../records/store.js";
import type { MicroVm } from "../vm/machine.js";

/**
 * A published port lives as long as its service: when a service ends on its
 * own, its ports are unpublished here within a second, and the record says
 * how it ended, without waiting for anyone to ask.
 */
export class PublishedPortWatcher {
  private readonly ports = new Map<number, string>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly store: WorkspaceStore,
    private readonly id: string,
    private readonly vm: MicroVm,
  ) {}

  track(hostPort: number, service: string): void {
    this.ports.set(hostPort, service);
    this.timer ??= setInterval(() => void this.check(), PORT_WATCH_MS);
    this.timer.unref();
  }

  untrack(hostPort: number): void {
    this.ports.delete(hostPort);
    if (this.ports.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async check(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const { services } = await this.vm.agent.request("service_list", {});
      const ended = services.filter((s) => !serviceIsLive(s));
      const gone = [...this.ports].filter(([, name]) => ended.some((s) => s.name === name));
      if (gone.length === 0) return;
      for (const [port] of gone) {
        await this.vm.unforwardPort(port);
        this.untrack(port);
      }
      const ports = new Set(gone.map(([port]) => port));
      await this.store.update(this.id, (r) => {
        r.published_ports = (r.published_ports ?? []).filter((p) => !ports.has(p.host_port));
        for (const seen of r.services ?? []) {
          const now = ended.find((s) => s.name === seen.name);
          if (!now || !serviceIsLive(seen)) continue;
          Object.assign(seen, {
            state: now.state,
            exit_code: now.exit_code,
            stop_reason: now.stop_reason,
            ended_at: now.ended_at,
          });
        }
      });
    } catch {
      // The VM is going away, or the agent is busy: the next tick tries again.
    } finally {
      this.busy = false;
    }
  }
}

const PORT_WATCH_MS = 1000;
