#!/usr/bin/env bash
# Checks the files nothing here runs: the container images (docker/), the compose file and the cluster
# launchers (deploy/). The development machines have no Docker engine, Slurm or Kubernetes, so this is
# what can be checked without them:
#   - YAML: yamllint (syntax and style) and a parse of every document;
#   - shell: shellcheck on scripts/*.sh and the Slurm batch script;
#   - Dockerfiles: every COPY source and every scripts/ program they name exists, every program they start
#     is one the build makes, the coordinator image has a HEALTHCHECK;
#   - compose: `docker compose config` or `docker-compose config` when either is installed (optional).
# Exit 0 only when every check that ran passed. ctest runs it (deploy_files_check).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
failed=0
check() {
  local name=$1
  shift
  if "$@"; then
    echo "check-deploy: ok: $name"
  else
    echo "check-deploy: FAILED: $name" >&2
    failed=1
  fi
}
need() {
  command -v "$1" >/dev/null || { echo "check-deploy: $1 is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
}
need yamllint
need shellcheck

yaml_files=(docker/compose.yaml deploy/kubernetes/*.yaml deploy/kubernetes/examples/*.yaml)
check "yamllint ${yaml_files[*]}" yamllint -s -d \
  '{extends: default, rules: {line-length: {max: 120}, document-start: disable}}' "${yaml_files[@]}"
check "YAML documents parse" /usr/bin/python3 - "${yaml_files[@]}" <<'EOF'
import sys, yaml
for path in sys.argv[1:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    assert docs, f"{path}: no document"
    for d in docs:
        if "kind" in d:
            assert "apiVersion" in d and "metadata" in d, f"{path}: {d.get('kind')} lacks apiVersion or metadata"
EOF
check "shellcheck scripts/*.sh deploy/slurm/*.sbatch tests/deploy/" shellcheck -x scripts/*.sh deploy/slurm/*.sbatch \
  tests/deploy/*.sh tests/deploy/kubernetes/*.sh
check "Dockerfiles name files, scripts and programs that exist" /usr/bin/python3 - docker/*.Dockerfile <<'EOF'
import os, re, shlex, sys
programs = {"hpsearch", "hpsearch-worker", "hpsearch-core"}
problems = []
for path in sys.argv[1:]:
    text = open(path).read().replace("\\\n", " ")
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    instructions = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]
    if not instructions or instructions[0][0] not in ("FROM", "ARG"):
        problems.append(f"{path}: does not start with FROM or ARG")
    for op, args in instructions:
        if op == "COPY" and "--from=" not in args:
            for source in shlex.split(args)[:-1]:
                if not source.startswith("--") and not os.path.exists(source):
                    problems.append(f"{path}: COPY {source}: no such file in the repository")
        if op == "RUN":
            for script in re.findall(r"(?<![\w/])(scripts/[\w.-]+)", args):
                if not os.access(script, os.X_OK):
                    problems.append(f"{path}: RUN names {script}, which is missing or not executable")
        if op in ("ENTRYPOINT", "CMD") and args.startswith("["):
            first = shlex.split(args.strip("[]").replace(",", " "))[0]
            if op == "ENTRYPOINT" and first not in programs:
                problems.append(f"{path}: ENTRYPOINT {first} is not one of {sorted(programs)}")
        if op == "HEALTHCHECK" and "CMD" in args:
            tokens = shlex.split(args.split("CMD", 1)[1].strip().strip("[]").replace(",", " "))
            if tokens and tokens[0] not in programs:
                problems.append(f"{path}: HEALTHCHECK runs {tokens[0]}, not an hpsearch program")
    if os.path.basename(path) == "coordinator.Dockerfile" and not any(op == "HEALTHCHECK" for op, _ in instructions):
        problems.append(f"{path}: no HEALTHCHECK")
for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
if docker compose version >/dev/null 2>&1; then
  check "docker compose config" docker compose -p hpsearch -f docker/compose.yaml config -q
elif command -v docker-compose >/dev/null; then
  check "docker-compose config" docker-compose -p hpsearch -f docker/compose.yaml config -q
else
  echo "check-deploy: skipped: docker compose config (neither docker compose nor docker-compose is installed)"
fi
exit $failed
