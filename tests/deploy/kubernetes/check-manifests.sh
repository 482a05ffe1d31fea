#!/usr/bin/env bash
# Checks deploy/kubernetes/ offline (ctest: kubernetes_manifests_check): every object against the
# Kubernetes API schemas, every pod against the "restricted" Pod Security Standard, and the set
# against hpsearch's own needs; then every fixture in fixtures/ must fail with exactly the rules it
# names, so each check is shown able to fail. The rules are in check.js. Needs Node.js and the
# validator installed from package-lock.json (scripts/test.sh runs `npm ci` here when needed).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
if [ ! -d "$here/node_modules/kubernetes-models" ]; then
  echo "check-manifests: the validator is not installed: run npm ci --prefix tests/deploy/kubernetes" \
    "(scripts/test.sh does)" >&2
  exit 1
fi
command -v node >/dev/null || { echo "check-manifests: node is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
version=$(sed -n 's/^project(hpsearch VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
shopt -s nullglob
/usr/bin/python3 - "$version" "$root" "$here/fixtures" <<'PY' | (cd "$here" && node check.js)
import glob, json, os, sys, yaml
version, root, fixtures = sys.argv[1:]
def docs(pattern):
    out = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            for i, d in enumerate(yaml.safe_load_all(f)):
                if d is not None:
                    out.append({"file": os.path.relpath(path, root), "index": i, "object": d})
    return out
json.dump({"version": version,
           "applied": docs(os.path.join(root, "deploy/kubernetes/*.yaml")),
           "examples": docs(os.path.join(root, "deploy/kubernetes/examples/*.yaml")),
           "fixtures": docs(os.path.join(fixtures, "*.yaml"))}, sys.stdout)
PY
