// Validates KEDA and Prometheus Operator objects offline, two ways, since each misses what the
// other catches:
//  1. the JSON-schema validators that @kubernetes-models ships for each kind (types, required
//     fields, enums, formats), generated from the operators' Go API types;
//  2. the same packages' TypeScript interfaces: every object becomes a typed object literal and
//     the compiler rejects unknown fields at any depth (excess property checks), as the API
//     server does with strict field validation. The schemas alone let unknown fields through.
//
// Usage: node validate_crs.mjs OBJECTS.json...   where each file holds
//   [{"source": "where it came from", "object": {...}, "expect": "invalid" (optional)}, ...]
// Prints one line per object; exits 1 if any object is not as expected (an unknown kind is
// invalid).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { ScaledJob } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledJob";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

const here = dirname(fileURLToPath(import.meta.url));

// apiVersion/kind → the model class (schema) and the module that declares its interface.
const KINDS = {
  "keda.sh/v1alpha1/ScaledObject": [ScaledObject, "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject", "IScaledObject"],
  "keda.sh/v1alpha1/ScaledJob": [ScaledJob, "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledJob", "IScaledJob"],
  "keda.sh/v1alpha1/TriggerAuthentication": [TriggerAuthentication, "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication", "ITriggerAuthentication"],
  "monitoring.coreos.com/v1/ServiceMonitor": [ServiceMonitor, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor", "IServiceMonitor"],
  "monitoring.coreos.com/v1/PodMonitor": [PodMonitor, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor", "IPodMonitor"],
  "monitoring.coreos.com/v1/PrometheusRule": [PrometheusRule, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule", "IPrometheusRule"],
};

const entries = process.argv.slice(2).flatMap((file) => JSON.parse(readFileSync(file, "utf8")));
const problems = entries.map(() => []);
const label = (e) => `${e.source}: ${e.object.kind}/${e.object.metadata?.name ?? "?"}`;

// 1. Schemas.
entries.forEach((entry, i) => {
  const key = `${entry.object.apiVersion}/${entry.object.kind}`;
  const known = KINDS[key];
  if (!known) {
    problems[i].push(`no schema for ${key}`);
    return;
  }
  try {
    new known[0](entry.object).validate();
  } catch (err) {
    problems[i].push(`schema: ${err.message}`);
  }
});

// 2. Types: one typed constant per object in a virtual module next to node_modules.
const checked = entries.map((e, i) => [e, i]).filter(([e]) => KINDS[`${e.object.apiVersion}/${e.object.kind}`]);
const lines = [];
const spans = [];
const imported = new Set();
for (const [entry] of checked) {
  const [, module, iface] = KINDS[`${entry.object.apiVersion}/${entry.object.kind}`];
  if (!imported.has(iface)) {
    lines.push(`import type { ${iface} } from ${JSON.stringify(module)};`);
    imported.add(iface);
  }
}
for (const [entry, i] of checked) {
  const [, , iface] = KINDS[`${entry.object.apiVersion}/${entry.object.kind}`];
  const start = lines.length;
  lines.push(...`export const object${i}: ${iface} = ${JSON.stringify(entry.object, null, 2)};`.split("\n"));
  spans.push([start, lines.length - 1, i]);
}
const virtual = join(here, "__objects__.mts");
const text = lines.join("\n") + "\n";
const options = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  types: [],
};
const host = ts.createCompilerHost(options);
const getSourceFile = host.getSourceFile.bind(host);
host.getSourceFile = (name, version, ...rest) =>
  name === virtual ? ts.createSourceFile(name, text, version) : getSourceFile(name, version, ...rest);
const fileExists = host.fileExists.bind(host);
host.fileExists = (name) => name === virtual || fileExists(name);
const readFile = host.readFile.bind(host);
host.readFile = (name) => (name === virtual ? text : readFile(name));

if (checked.length) {
  const program = ts.createProgram([virtual], options, host);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, "\n    ");
    if (!d.file || d.file.fileName !== virtual || d.start === undefined) {
      // A broken installation or compiler set-up fails every object, loudly.
      checked.forEach(([, i]) => problems[i].push(`types: ${message}`));
      continue;
    }
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const span = spans.find(([from, to]) => line >= from && line <= to);
    if (!span) {
      checked.forEach(([, i]) => problems[i].push(`types: ${message}`));
      continue;
    }
    const path = lines[line].trim();
    problems[span[2]].push(`types: ${message} (at \`${path}\`)`);
  }
}

// An entry marked "expect": "invalid" is a deliberately broken copy: it passes when rejected.
let failed = 0;
let rejected = 0;
entries.forEach((entry, i) => {
  const invalid = problems[i].length > 0;
  if (entry.expect === "invalid") {
    if (invalid) {
      rejected += 1;
      console.log(`ok   ${label(entry)} rejected as it should be: ${problems[i][0].split("\n")[0]}`);
    } else {
      failed += 1;
      console.log(`FAIL ${label(entry)} was accepted, but it is broken on purpose`);
    }
  } else if (invalid) {
    failed += 1;
    console.log(`FAIL ${label(entry)}`);
    for (const p of problems[i]) console.log(`    ${p}`);
  } else {
    console.log(`ok   ${label(entry)}`);
  }
});
console.log(
  `custom resources: ${entries.length - failed} as expected (${rejected} broken copies rejected), ${failed} not`,
);
process.exit(failed ? 1 : 0);
