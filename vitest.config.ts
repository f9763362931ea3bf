import { defineConfig } from "vitest/config";

// `unit` runs anywhere in seconds (the VM layer may be faked); `guest` boots
// real microVMs and talks to the real agent; `smoke` walks whole use cases.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["src/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "smoke",
          include: ["smoke/**/*.smoke.ts"],
          testTimeout: 900_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "guest",
          include: ["test/**/*.test.ts"],
          // Background standby VMs would change what other tests measure; standby.test.ts turns them on.
          env: { PYRO_STANDBY: "0" },
          testTimeout: 600_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
