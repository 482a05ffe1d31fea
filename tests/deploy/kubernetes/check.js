// Checks Kubernetes manifests offline: each object against the Kubernetes API schemas (the npm package
// kubernetes-models, pinned by package-lock.json; types, required fields, enums and unknown fields),
// each pod template against the "restricted" Pod
// Security Standard, and the whole set against what hpsearch's deployment needs (TLS, probes by
// `hpsearch health`, one coordinator on a ReadWriteOnce volume, GPU pools, pinned tags, no Secret
// in what `kubectl apply -f` creates).
//
// Input (stdin): JSON {"version": "0.1.0", "applied": [DOC...], "examples": [DOC...],
//                      "fixtures": [DOC...]}, each DOC {"file": ..., "index": N, "object": {...}}.
// The applied documents and the examples must pass every check that applies to them; each fixture
// must fail with exactly the rules its annotation hpsearch.test/expect lists (comma-separated), so
// every rule is proven able to fail. Exit 0 when all of that holds.
"use strict";

const fs = require("fs");
const path = require("path");

// --- the API schemas -------------------------------------------------------------------------------

function schemaErrors(object) {
  if (!object || typeof object.apiVersion !== "string" || typeof object.kind !== "string") {
    return ["not a Kubernetes object (apiVersion and kind are required)"];
  }
  // "apps/v1" -> kubernetes-models/apps/v1/Deployment; "v1" -> kubernetes-models/v1/Secret.
  const module = path.join("kubernetes-models", object.apiVersion, object.kind);
  let Model;
  try {
    Model = require(module)[object.kind];
  } catch (e) {
    return [`unknown kind ${object.apiVersion} ${object.kind}`];
  }
  try {
    new Model(object).validate();
  } catch (e) {
    return [e.message];
  }
  return unknownFields(object).map((at) => `unknown field ${at} (a typo?)`);
}

// The validators accept fields the API does not know (kubectl's strict field validation would refuse
// them). So each object is validated once more by its schema's own compiled validator, through
// proxies that record which keys the validator reads: a key it never reads is no field of the schema
// (maps such as labels are read key by key, so their keys count as read).
function unknownFields(object) {
  const [group, version] = object.apiVersion.includes("/") ? object.apiVersion.split("/")
                                                             : ["core", object.apiVersion];
  const upper = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  const name = `IoK8sApi${upper(group.split(".")[0])}${upper(version)}${object.kind}.js`;
  let validate;
  try {
    // By file, not by module name: the package does not export its schemas.
    ({validate} = require(path.join(__dirname, "node_modules/kubernetes-models/_schemas", name)));
  } catch (e) {
    return [];
  }
  const seen = [];
  const track = (value, at) => {
    if (value === null || typeof value !== "object") return value;
    const read = new Set();
    const copy = Array.isArray(value)
      ? value.map((v, i) => track(v, `${at}/${i}`))
      : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, track(v, `${at}/${k}`)]));
    if (!Array.isArray(value)) seen.push({at, keys: Object.keys(value), read});
    return new Proxy(copy, {
      get(target, key, receiver) {
        if (typeof key === "string") read.add(key);
        return Reflect.get(target, key, receiver);
      },
    });
  };
  validate(track(object, ""));
  const unknown = seen.flatMap(({at, keys, read}) =>
    keys.filter((k) => !read.has(k)).map((k) => `${at}/${k}`)).sort();
  // Only the outermost: what lies under an unknown field is unknown too.
  return unknown.filter((at, i) => !unknown.slice(0, i).some((outer) => at.startsWith(`${outer}/`)));
}

// --- the restricted Pod Security Standard ----------------------------------------------------------

const kAllowedVolumes = new Set(["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                 "persistentVolumeClaim", "projected", "secret"]);

function podSpecOf(object) {
  const spec = object.spec || {};
  switch (object.kind) {
    case "Pod": return spec;
    case "Deployment": case "StatefulSet": case "DaemonSet": case "ReplicaSet": case "Job":
      return (spec.template || {}).spec;
    case "CronJob": return (((spec.jobTemplate || {}).spec || {}).template || {}).spec;
    default: return undefined;
  }
}

function containersOf(pod) {
  return [...(pod.initContainers || []), ...(pod.containers || []), ...(pod.ephemeralContainers || [])];
}

// Returns [rule, message] pairs.
function restrictedViolations(pod) {
  const out = [];
  const podSecurity = pod.securityContext || {};
  for (const field of ["hostNetwork", "hostPID", "hostIPC"]) {
    if (pod[field] === true) out.push(["restricted/host-namespaces", `${field} is true`]);
  }
  for (const volume of pod.volumes || []) {
    const type = Object.keys(volume).find((k) => k !== "name");
    if (!kAllowedVolumes.has(type)) {
      out.push(["restricted/volume-types", `volume ${volume.name} is ${type}`]);
    }
  }
  const podSeccomp = (podSecurity.seccompProfile || {}).type;
  for (const c of containersOf(pod)) {
    const sc = c.securityContext || {};
    const name = `container ${c.name}`;
    if (sc.privileged === true) out.push(["restricted/privileged", `${name} is privileged`]);
    if (sc.allowPrivilegeEscalation !== false) {
      out.push(["restricted/allow-privilege-escalation",
                `${name}: securityContext.allowPrivilegeEscalation must be false`]);
    }
    const caps = sc.capabilities || {};
    if (!(caps.drop || []).includes("ALL")) {
      out.push(["restricted/capabilities", `${name}: securityContext.capabilities.drop must hold ALL`]);
    }
    for (const added of caps.add || []) {
      if (added !== "NET_BIND_SERVICE") {
        out.push(["restricted/capabilities", `${name}: adds capability ${added}`]);
      }
    }
    const nonRoot = sc.runAsNonRoot !== undefined ? sc.runAsNonRoot : podSecurity.runAsNonRoot;
    if (nonRoot !== true) {
      out.push(["restricted/run-as-non-root", `${name}: runAsNonRoot must be true (pod or container)`]);
    }
    const user = sc.runAsUser !== undefined ? sc.runAsUser : podSecurity.runAsUser;
    if (user === 0) out.push(["restricted/run-as-user", `${name}: runAsUser is 0`]);
    const seccomp = (sc.seccompProfile || {}).type || podSeccomp;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") {
      out.push(["restricted/seccomp",
                `${name}: seccompProfile.type must be RuntimeDefault or Localhost (pod or container)`]);
    }
    for (const port of c.ports || []) {
      if (port.hostPort) out.push(["restricted/host-ports", `${name}: hostPort ${port.hostPort}`]);
    }
    if (sc.procMount !== undefined && sc.procMount !== "Default") {
      out.push(["restricted/proc-mount", `${name}: procMount ${sc.procMount}`]);
    }
  }
  return out;
}

// --- what hpsearch's deployment needs --------------------------------------------------------------

function projectViolations(object, version, applied) {
  const out = [];
  if (applied && object.kind === "Secret") {
    out.push(["hpsearch/no-secret-applied",
              `Secret ${object.metadata.name}: \`kubectl apply -f\` of the folder would overwrite the real one ` +
              "(keep it under examples/)"]);
  }
  if (object.kind === "PersistentVolumeClaim") {
    const modes = (object.spec || {}).accessModes || [];
    if (modes.length !== 1 || modes[0] !== "ReadWriteOnce") {
      out.push(["hpsearch/volume-read-write-once",
                `PersistentVolumeClaim ${object.metadata.name}: accessModes must be [ReadWriteOnce] ` +
                "(one SQLite writer on a local file system)"]);
    }
  }
  const pod = podSpecOf(object);
  if (!pod) return out;
  const component = ((object.metadata || {}).labels || {})["app.kubernetes.io/component"];
  for (const c of containersOf(pod)) {
    const name = `container ${c.name}`;
    if (((c.securityContext || {}).readOnlyRootFilesystem) !== true) {
      out.push(["hpsearch/read-only-root", `${name}: securityContext.readOnlyRootFilesystem must be true`]);
    }
    const image = c.image || "";
    const tag = image.includes("@") ? null : image.slice(image.lastIndexOf("/") + 1).split(":")[1];
    if (!image.includes("@") && (!tag || tag === "latest" || !tag.startsWith(version))) {
      out.push(["hpsearch/pinned-image",
                `${name}: image ${image} must be tagged with the project's version ${version} (or a digest)`]);
    }
    const gpus = ((c.resources || {}).limits || {})["nvidia.com/gpu"];
    if (gpus) {
      const tolerates = (pod.tolerations || []).some((t) => t.key === "nvidia.com/gpu");
      if (!tolerates || !pod.nodeSelector || Object.keys(pod.nodeSelector).length === 0) {
        out.push(["hpsearch/gpu-pool",
                  `${name} requests nvidia.com/gpu: its pod needs a nodeSelector for its GPU pool and a ` +
                  "toleration for nvidia.com/gpu"]);
      }
    }
    const env = Object.fromEntries((c.env || []).map((e) => [e.name, e.value]));
    const args = c.args || [];
    if (component === "coordinator") {
      if (!args.includes("--tls-cert") || !args.includes("--tls-key")) {
        out.push(["hpsearch/tls", `${name}: the coordinator must serve TLS (--tls-cert, --tls-key)`]);
      }
      for (const probe of ["livenessProbe", "readinessProbe"]) {
        const command = ((c[probe] || {}).exec || {}).command || [];
        if (command[0] !== "hpsearch" || command[1] !== "health") {
          out.push(["hpsearch/health-probes", `${name}: ${probe} must run \`hpsearch health\``]);
        }
      }
    }
    if (component === "worker" && !env.HPSEARCH_TLS_CA) {
      out.push(["hpsearch/tls", `${name}: the worker must connect with TLS (HPSEARCH_TLS_CA)`]);
    }
    if (!env.HPSEARCH_AUTH_TOKEN_FILE) {
      out.push(["hpsearch/token", `${name}: HPSEARCH_AUTH_TOKEN_FILE is not set`]);
    }
  }
  if (component === "coordinator") {
    const spec = object.spec || {};
    if (spec.replicas !== 1 || (spec.strategy || {}).type !== "Recreate") {
      out.push(["hpsearch/one-coordinator",
                `${object.kind} ${object.metadata.name}: the coordinator needs replicas: 1 and strategy Recreate`]);
    }
  }
  return out;
}

// Every rule above; each must be shown failing by a fixture.
const kRules = [
  "schema", "restricted/host-namespaces", "restricted/volume-types", "restricted/privileged",
  "restricted/allow-privilege-escalation", "restricted/capabilities", "restricted/run-as-non-root",
  "restricted/run-as-user", "restricted/seccomp", "restricted/host-ports", "restricted/proc-mount",
  "hpsearch/no-secret-applied", "hpsearch/volume-read-write-once", "hpsearch/read-only-root",
  "hpsearch/pinned-image", "hpsearch/gpu-pool", "hpsearch/tls", "hpsearch/health-probes",
  "hpsearch/token", "hpsearch/one-coordinator",
];

function check(doc, version, applied) {
  const object = doc.object;
  const found = schemaErrors(object).map((m) => ["schema", m]);
  const pod = podSpecOf(object || {});
  if (pod) found.push(...restrictedViolations(pod));
  if (object && object.metadata) found.push(...projectViolations(object, version, applied));
  return found;
}

function main() {
  const input = JSON.parse(fs.readFileSync(0, "utf8"));
  let failed = false;
  const where = (doc) => `${doc.file}#${doc.index} (${(doc.object || {}).kind} ${
    ((doc.object || {}).metadata || {}).name})`;
  for (const [set, applied] of [["applied", true], ["examples", false]]) {
    for (const doc of input[set]) {
      const found = check(doc, input.version, applied);
      for (const [rule, message] of found) console.error(`${where(doc)}: ${rule}: ${message}`);
      if (found.length) failed = true;
      else console.log(`ok: ${where(doc)}`);
    }
  }
  const proven = new Set();
  for (const doc of input.fixtures) {
    const annotations = ((doc.object || {}).metadata || {}).annotations || {};
    const expected = (annotations["hpsearch.test/expect"] || "").split(",").map((s) => s.trim())
      .filter(Boolean).sort();
    const found = [...new Set(check(doc, input.version, true).map(([rule]) => rule))].sort();
    if (!expected.length || JSON.stringify(found) !== JSON.stringify(expected)) {
      console.error(`${where(doc)}: fixture: expected to fail with [${expected}], failed with [${found}]`);
      failed = true;
    } else {
      console.log(`ok: fixture ${where(doc)} fails with ${found.join(", ")}`);
      found.forEach((r) => proven.add(r));
    }
  }
  const unproven = kRules.filter((r) => !proven.has(r));
  if (unproven.length) {
    console.error(`rules no fixture shows failing: ${unproven.join(" ")}`);
    failed = true;
  }
  console.log(`rules proven able to fail by a fixture: ${[...proven].sort().join(" ")}`);
  process.exit(failed ? 1 : 0);
}

main();
