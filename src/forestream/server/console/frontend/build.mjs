// Copies the distributed files of the console's npm dependencies into ../static/vendor,
// where forestream server serves them (/console/static/vendor/...). Run by
// `make console-assets` after `npm ci`.
import { copyFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "static", "vendor");
const files = {
  "htmx.org/dist/htmx.min.js": "htmx.min.js",
  "uplot/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
  "uplot/dist/uPlot.min.css": "uPlot.min.css",
};

mkdirSync(vendor, { recursive: true });
for (const [source, target] of Object.entries(files)) {
  const from = join(here, "node_modules", source);
  if (!existsSync(from)) {
    console.error(`missing ${from}: run npm ci first`);
    process.exit(1);
  }
  copyFileSync(from, join(vendor, target));
  console.log(`console asset: static/vendor/${target}`);
}
