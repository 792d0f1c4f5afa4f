// node validate.mjs URL-or-file: parse the AsyncAPI document with the official parser and print
// {"errors": [...], "warnings": [...]} as JSON (exit 1 when there is any).
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const source = process.argv[2];
const text = source.startsWith("http") ? await (await fetch(source)).text() : await readFile(source, "utf8");
const { diagnostics } = await new Parser().parse(text);
const describe = (d) => ({ code: d.code, message: d.message, path: d.path.join(".") });
const errors = diagnostics.filter((d) => d.severity === 0).map(describe);
const warnings = diagnostics.filter((d) => d.severity === 1).map(describe);
console.log(JSON.stringify({ errors, warnings }, null, 2));
process.exit(errors.length || warnings.length ? 1 : 0);
