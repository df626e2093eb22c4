// Builds web/dist from web/src: one minified script, one stylesheet and the
// page. The output depends only on the sources and the pinned esbuild, so
// `task web-check` can compare it with the committed dist/.
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  charset: "utf8",
  logLevel: "warning",
  target: ["es2022", "chrome109", "firefox115", "safari16"],
};
await esbuild.build({
  ...common,
  entryPoints: ["src/main.ts"],
  outfile: "dist/app.js",
  format: "iife",
  // The licence notices of the bundled libraries stay, at the end.
  legalComments: "eof",
});
await esbuild.build({
  ...common,
  entryPoints: ["src/style.css"],
  outfile: "dist/style.css",
});
await copyFile(join(root, "index.html"), join(dist, "index.html"));
