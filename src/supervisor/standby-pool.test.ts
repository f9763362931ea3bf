import { describe, expect, it } from "vitest";
import { shapeName } from "../boot/warm-image.js";
import { standbyEnabled, standbyIdleSeconds } from "./standby-pool.js";

describe("standby settings", () => {
  it("are on by default with a 15-minute idle timeout", () => {
    expect(standbyEnabled({})).toBe(true);
    expect(standbyIdleSeconds({})).toBe(900);
  });

  it("are off with PYRO_STANDBY=0 or an idle timeout of 0", () => {
    expect(standbyEnabled({ PYRO_STANDBY: "0" })).toBe(false);
    expect(standbyEnabled({ PYRO_STANDBY_IDLE_SECONDS: "0" })).toBe(false);
  });

  it("ignore an idle timeout that is not a number of seconds", () => {
    expect(standbyIdleSeconds({ PYRO_STANDBY_IDLE_SECONDS: "soon" })).toBe(900);
    expect(standbyIdleSeconds({ PYRO_STANDBY_IDLE_SECONDS: "-5" })).toBe(900);
    expect(standbyIdleSeconds({ PYRO_STANDBY_IDLE_SECONDS: "30" })).toBe(30);
  });

  it("name one slot per environment, size and network variant", () => {
    expect(shapeName({ environment: "debian:12", vcpus: 1, memMib: 1024, network: false })).toBe(
      "debian_12-1c-1024m",
    );
    expect(shapeName({ environment: "debian:12", vcpus: 1, memMib: 1024, network: true })).toBe(
      "debian_12-1c-1024m-net",
    );
  });
});
