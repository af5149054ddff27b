// Lint: typescript-eslint's recommended rules, plus a purity guard for the core
// (model/, policy/ and every driver's compile/render): no fs, processes or sockets there.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const effects = ["node:fs", "node:fs/promises", "node:child_process", "node:net", "node:os", "node:process", "fs", "child_process", "net"];

export default tseslint.config(
  // src/web/public/app.js is esbuild's bundle of src/web/app (test/web/bundle.test.ts checks it).
  { ignores: ["node_modules/**", "dist/**", "src/web/public/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["src/model/**/*.ts", "src/policy/**/*.ts", "src/drivers/*/compile.ts", "src/drivers/*/render.ts", "src/web/app/derive.ts"],
    rules: {
      "no-restricted-imports": ["error", { paths: effects.map((name) => ({ name, message: "the core is pure: effects live in src/host, drivers, agent and cli" })) }],
      "no-restricted-globals": ["error", { name: "process", message: "the core is pure: pass configuration in" }],
      "no-restricted-properties": ["error", { object: "Date", property: "now", message: "pass time in" }, { object: "Math", property: "random", message: "pass randomness in" }],
    },
  },
);
