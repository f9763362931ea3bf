import js from "@eslint/js";
import tseslint from "typescript-eslint";
import layers from "./eslint.layers.js";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/", "smoke/fixtures/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  {
    files: ["src/**/*.ts"],
    plugins: { pyro: layers },
    rules: { "pyro/layers": "error" },
  },
);
