#!/usr/bin/env bash
# Build the modelops images without a container daemon or registry and write OCI archives to dist/.
#
# Called by `make image`. Steps, each timed (a table at the end) and cached under
# ~/.cache/modelops/image keyed by a hash of its inputs, so a warm run only redoes what changed:
#   1. base root filesystem: Debian bookworm + python3 from the host's Debian mirror (base-rootfs.sh),
#      imported into buildah's storage;
#   2. wheels: every dependency resolved and downloaded on the host (pip wheel), cached, plus the
#      project's own wheel (rebuilt every run, reproducible: SOURCE_DATE_EPOCH), in image/wheels/;
#   3. per role, the dependencies image: `buildah build` of the top-level Containerfile with
#      DEPENDENCIES_ONLY=1 (chroot isolation, offline) on that base, pushed as an OCI archive and
#      cached by a key of everything but the project's own source (base, Containerfile,
#      pyproject.toml, dependency wheels): a source change never reaches buildah;
#   4. per role, the project as ONE top layer on that archive (image/layer.py: the wheel installed,
#      compiled, opaque over modelops/ and its dist-info), written to dist/ named
#      docker.io/library/modelops-<role>:<version> (the name a kind node's containerd looks up for
#      `modelops-<role>:<version>`);
#   5. the test image modelops-server-testing: the server image plus one layer with
#      tests/models/modelops_testing in the same site-packages (only when the server is built).
# Buildah keeps its own storage under the cache directory, so nothing else on the machine is touched.
#
# Usage: image/build.sh [ROLE...]   (roles: operator server trainer; default: all three)
# Environment: PYTHON (host Python 3.11 with pip and `installer`, default .venv/bin/python),
# MODELOPS_CACHE, MODELOPS_STORAGE_DRIVER (buildah's: vfs, the default, or overlay).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"

roles=("$@")
[[ ${#roles[@]} -gt 0 ]] || roles=(operator server trainer)
for role in "${roles[@]}"; do
  case $role in operator|server|trainer) ;; *) echo "build.sh: unknown role '$role' (operator, server, trainer)" >&2; exit 2;; esac
done

python=${PYTHON:-$root/.venv/bin/python}
cache=${MODELOPS_CACHE:-$HOME/.cache/modelops}/image
mkdir -p "$cache" "$root/dist"

log() { printf '[image %s] %s\n' "$(date +%T)" "$*"; }
# Step timing: `begin NAME` ... `finish RESULT` logs the step and keeps a row for the closing table.
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
secs() { local us=$(( $(now_us) - $1 )); printf '%d.%d' $(( us / 1000000 )) $(( us % 1000000 / 100000 )); }
build_started=$(now_us)
rows=()
begin() { step=$1; step_started=$(now_us); }
finish() {
  local took; took=$(secs "$step_started")
  rows+=("$(printf '  %-52s %7s s  %s' "$step" "$took" "$1")")
  log "$step: $1 (${took} s)"
}

begin "wait for the image cache lock"
exec 9>"$cache/lock"
flock 9  # one build at a time per machine: buildah's storage and the caches are shared
finish "held"

version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
# Revision and creation time are those of the last commit that changed what goes into the image,
# so a commit elsewhere (tests, docs) neither rebuilds the images nor changes them; uncommitted
# changes to those inputs mark the revision "-dirty".
inputs=(Containerfile image/base-rootfs.sh image/build.sh image/layer.py pyproject.toml README.md operator
        tests/models/modelops_testing)
revision=$(git log -1 --format=%H -- "${inputs[@]}" 2>/dev/null || true)
timestamp=$(git log -1 --format=%ct -- "${inputs[@]}" 2>/dev/null || true)
[[ -n $revision ]] || revision=unknown
[[ -n $timestamp ]] || timestamp=$(date +%s)
if [[ -n $(git status --porcelain --untracked-files=no -- "${inputs[@]}" 2>/dev/null) ]]; then
  revision=$revision-dirty
fi
hash() { sha256sum | cut -c1-16; }
# vfs works on any filesystem, in any sandbox; MODELOPS_STORAGE_DRIVER=overlay is faster where it works.
driver=${MODELOPS_STORAGE_DRIVER:-vfs}
bah() { buildah --root "$cache/storage-$driver" --runroot "$cache/run-$driver" --storage-driver "$driver" "$@"; }

# 1. Base root filesystem.
begin "base root filesystem"
base_key=$( (cat "$here/base-rootfs.sh"; cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true) | hash)
base_tar=$cache/base-$base_key.tar
base_ref=localhost/modelops-base:$base_key
result="cached ($base_key)"
if [[ ! -s $base_tar ]]; then
  log "base root filesystem (mmdebstrap, bookworm) -> $base_tar"
  rm -f "$base_tar.partial"
  "$here/base-rootfs.sh" "$base_tar"
  result="made with mmdebstrap ($base_key)"
fi
if ! bah inspect --type image "$base_ref" >/dev/null 2>&1; then
  log "importing the base into buildah as $base_ref"
  ctr=$(bah from scratch)
  bah add --quiet "$ctr" "$base_tar" /
  bah config --env PATH=/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  bah commit --quiet --rm --timestamp 0 "$ctr" "$base_ref" >/dev/null
  result="$result, imported into buildah"
fi
finish "$result"

# 2. Wheels: dependencies keyed by pyproject.toml and the host Python; the project's wheel always.
begin "dependency wheels"
py_tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
deps_key=$( (cat pyproject.toml; echo "$py_tag") | hash)
deps_dir=$cache/wheels-$deps_key
result="cached ($deps_key)"
if [[ ! -d $deps_dir ]]; then
  log "resolving dependency wheels on the host -> $deps_dir"
  rm -rf "$deps_dir.partial"
  "$python" -m pip wheel --quiet --wheel-dir "$deps_dir.partial" ".[operator,server,trainer]"
  rm -f "$deps_dir.partial"/modelops_operator-*.whl
  mv "$deps_dir.partial" "$deps_dir"
  result="resolved ($deps_key)"
fi
rm -f image/wheels/*.whl
cp -l "$deps_dir"/*.whl image/wheels/ 2>/dev/null || cp "$deps_dir"/*.whl image/wheels/
finish "$result"

begin "project wheel"
# The host's setuptools when it is new enough (the dev extra asks for it): no build environment to
# set up (about 2 s against 10 s or more). A stale build/ would put deleted modules into the wheel.
isolation=()
"$python" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 77)' 2>/dev/null \
  && isolation=(--no-build-isolation)
rm -rf build operator/*.egg-info
# SOURCE_DATE_EPOCH: the same source gives a byte-identical wheel, hence the same layer digest.
SOURCE_DATE_EPOCH=$timestamp "$python" -m pip wheel --quiet --no-deps "${isolation[@]}" --wheel-dir image/wheels .
rm -rf build operator/*.egg-info
wheel=$(ls image/wheels/modelops_operator-"$version"-*.whl)
finish "$(basename "$wheel") $(sha256sum "$wheel" | cut -c1-12)"

# 3. One dependencies image per role: the key covers everything it is made of, and not the
# project's own source (the project's wheel is in the build context, installed and uninstalled).
# Time 0, as the base: what a key names is the same whenever it is built (the image's config and
# the top layer carry the source's time).
image_key=$( (echo "deps-1 $base_key $version"; cat Containerfile pyproject.toml
              sha256sum image/wheels/*.whl | grep -v modelops_operator- | cut -d' ' -f1) | hash)
for role in "${roles[@]}"; do
  begin "$role: dependencies image"
  deps_ref=localhost/modelops-$role-deps:$image_key
  deps_archive=$cache/deps/$image_key/modelops-$role.oci.tar
  if [[ -s $deps_archive ]]; then
    finish "cached ($image_key)"
    continue
  fi
  log "building $deps_ref with buildah (chroot isolation, offline)"
  bah build --quiet --isolation chroot --pull=never --layers=false --force-rm \
    --timestamp 0 \
    --build-arg BASE="$base_ref" --build-arg EXTRAS="$role" --build-arg DEPENDENCIES_ONLY=1 \
    --build-arg VERSION="$version" --build-arg REVISION="dependencies-$image_key" \
    --tag "$deps_ref" --file Containerfile . >/dev/null
  mkdir -p "$(dirname "$deps_archive")"
  rm -f "$deps_archive.partial"
  bah push --quiet --format oci "$deps_ref" "oci-archive:$deps_archive.partial:$deps_ref"
  mv "$deps_archive.partial" "$deps_archive"
  bah rmi --force "$deps_ref" >/dev/null
  finish "built with buildah ($image_key, $(du -m "$deps_archive" | cut -f1) MB)"
done

# 4. The project's layer on each. 5. The test models' layer on the server image.
for role in "${roles[@]}"; do
  begin "$role: project layer"
  archive=dist/modelops-$role-$version.oci.tar
  out=$("$python" "$here/layer.py" --base "$cache/deps/$image_key/modelops-$role.oci.tar" --out "$archive" \
    --ref "docker.io/library/modelops-$role:$version" --wheel "$wheel" --created "$timestamp" \
    --label org.opencontainers.image.revision="$revision")
  finish "${out#"$archive: "}"
  log "$archive: $(du -m "$archive" | cut -f1) MB archive; load it with: kind load image-archive $archive"
  if [[ $role == server ]]; then
    begin "server-testing: test models layer"
    testing=dist/modelops-server-testing-$version.oci.tar
    out=$("$python" "$here/layer.py" --base "$archive" --out "$testing" \
      --ref "docker.io/library/modelops-server-testing:$version" --package tests/models/modelops_testing \
      --created "$timestamp" --label org.opencontainers.image.title=modelops-server-testing \
      --label org.opencontainers.image.description="modelops server image with the deliberately slow or failing test models (tests/models/modelops_testing); never for production")
    finish "${out#"$testing: "}"
  fi
done

# Forget what older inputs made, so the cache holds one base, one wheel set and one image set.
begin "cache clean-up"
mkdir -p "$cache/deps"
find "$cache/deps" -mindepth 1 -maxdepth 1 -type d ! -name "$image_key" -exec rm -rf {} +
find "$cache" -maxdepth 1 \( -name 'base-*.tar' ! -name "base-$base_key.tar" \
  -o -name 'wheels-*' ! -name "wheels-$deps_key" \) -exec rm -rf {} +
for old in $(bah images --noheading --format '{{.Name}}:{{.Tag}}' | grep '^localhost/modelops-base:' || true); do
  [[ $old == "$base_ref" ]] || bah rmi --force "$old" >/dev/null
done
finish "done"

log "step times (total $(secs "$build_started") s):"
printf '%s\n' "${rows[@]}"
