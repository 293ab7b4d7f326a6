#!/usr/bin/env bash
# Build the modelops images without a container daemon or registry and write OCI archives to dist/.
#
# Called by `make image`. Steps, each cached under ~/.cache/modelops/image keyed by a hash of its
# inputs, so a warm run only redoes what changed:
#   1. base root filesystem: Debian bookworm + python3 from the host's Debian mirror (base-rootfs.sh);
#   2. wheels: every dependency resolved and downloaded on the host (pip wheel), plus the project's
#      own wheel, copied into image/wheels/ so the build installs them offline;
#   3. per role, `buildah build` of the top-level Containerfile with chroot isolation on that base,
#      pushed as an OCI archive named docker.io/library/modelops-<role>:<version> (the name a kind
#      node's containerd looks up for `modelops-<role>:<version>`).
# Buildah keeps its own storage under the cache directory, so nothing else on the machine is touched.
#
# Usage: image/build.sh [ROLE...]   (roles: operator server trainer; default: all three)
# Environment: PYTHON (host Python 3.11 with pip, default .venv/bin/python), MODELOPS_CACHE,
# MODELOPS_STORAGE_DRIVER (buildah's: vfs, the default, or overlay).
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
exec 9>"$cache/lock"
flock 9  # one build at a time per machine: buildah's storage and the caches are shared

version=$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
# Revision and creation time are those of the last commit that changed what goes into the image,
# so a commit elsewhere (tests, docs) neither rebuilds the images nor changes them.
inputs=(Containerfile image/base-rootfs.sh image/build.sh pyproject.toml README.md operator)
revision=$(git log -1 --format=%H -- "${inputs[@]}" 2>/dev/null || true)
timestamp=$(git log -1 --format=%ct -- "${inputs[@]}" 2>/dev/null || true)
[[ -n $revision ]] || revision=unknown
[[ -n $timestamp ]] || timestamp=$(date +%s)
hash() { sha256sum | cut -c1-16; }
log() { printf '[image %s] %s\n' "$(date +%T)" "$*"; }
# vfs works on any filesystem, in any sandbox; MODELOPS_STORAGE_DRIVER=overlay is faster where it works.
driver=${MODELOPS_STORAGE_DRIVER:-vfs}
bah() { buildah --root "$cache/storage-$driver" --runroot "$cache/run-$driver" --storage-driver "$driver" "$@"; }

# 1. Base root filesystem.
base_key=$( (cat "$here/base-rootfs.sh"; cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true) | hash)
base_tar=$cache/base-$base_key.tar
base_ref=localhost/modelops-base:$base_key
if [[ ! -s $base_tar ]]; then
  log "base root filesystem (mmdebstrap, bookworm) -> $base_tar"
  rm -f "$base_tar.partial"
  "$here/base-rootfs.sh" "$base_tar"
fi
if ! bah inspect --type image "$base_ref" >/dev/null 2>&1; then
  log "importing the base into buildah as $base_ref"
  ctr=$(bah from scratch)
  bah add --quiet "$ctr" "$base_tar" /
  bah config --env PATH=/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  bah commit --quiet --rm --timestamp 0 "$ctr" "$base_ref" >/dev/null
fi

# 2. Wheels: dependencies keyed by pyproject.toml and the host Python; the project's wheel always.
py_tag=$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
deps_key=$( (cat pyproject.toml; echo "$py_tag") | hash)
deps_dir=$cache/wheels-$deps_key
if [[ ! -d $deps_dir ]]; then
  log "resolving dependency wheels on the host -> $deps_dir"
  rm -rf "$deps_dir.partial"
  "$python" -m pip wheel --quiet --wheel-dir "$deps_dir.partial" ".[operator,server,trainer]"
  rm -f "$deps_dir.partial"/modelops_operator-*.whl
  mv "$deps_dir.partial" "$deps_dir"
fi
rm -f image/wheels/*.whl
cp "$deps_dir"/*.whl image/wheels/
# SOURCE_DATE_EPOCH: the same source gives a byte-identical wheel, so the image cache key holds.
SOURCE_DATE_EPOCH=$timestamp "$python" -m pip wheel --quiet --no-deps --wheel-dir image/wheels .
rm -rf build operator/*.egg-info

# 3. One image per role. The key covers everything the image is made of.
inputs_key=$( (echo "$base_key $version $revision $timestamp"; cat Containerfile; sha256sum image/wheels/*.whl | cut -d' ' -f1) | hash)
for role in "${roles[@]}"; do
  name=modelops-$role
  ref=docker.io/library/$name:$version
  archive=dist/$name-$version.oci.tar
  cached=$cache/archives/$inputs_key/$name-$version.oci.tar
  if [[ -s $cached ]]; then
    log "$ref unchanged (inputs $inputs_key); copying the cached archive"
  else
    log "building $ref with buildah (chroot isolation, offline)"
    started=$(date +%s)
    bah build --quiet --isolation chroot --pull=never --layers=false --force-rm \
      --timestamp "$timestamp" \
      --build-arg BASE="$base_ref" --build-arg EXTRAS="$role" \
      --build-arg VERSION="$version" --build-arg REVISION="$revision" \
      --tag "$ref" --file Containerfile . >/dev/null
    mkdir -p "$(dirname "$cached")"
    rm -f "$cached.partial"
    bah push --quiet --format oci "$ref" "oci-archive:$cached.partial:$ref"
    mv "$cached.partial" "$cached"
    bah rmi --force "$ref" >/dev/null
    log "built $ref in $(( $(date +%s) - started ))s"
  fi
  cp "$cached" "$archive"
  log "$archive: $(du -m "$archive" | cut -f1) MB archive; load it with: kind load image-archive $archive"
done
# Forget what older inputs made, so the cache holds one base, one wheel set and one image set.
find "$cache/archives" -mindepth 1 -maxdepth 1 -type d ! -name "$inputs_key" -exec rm -rf {} +
find "$cache" -maxdepth 1 \( -name 'base-*.tar' ! -name "base-$base_key.tar" \
  -o -name 'wheels-*' ! -name "wheels-$deps_key" \) -exec rm -rf {} +
for old in $(bah images --noheading --format '{{.Name}}:{{.Tag}}' | grep '^localhost/modelops-base:' || true); do
  [[ $old == "$base_ref" ]] || bah rmi --force "$old" >/dev/null
done
