/** The pyro version; also the environment catalog version (contract §2). Kept equal to package.json by a unit test. */
export const VERSION = "0.1.0";
