#!/usr/bin/env bash
# Build the Debian bookworm root filesystem that every modelops image starts from, as a tar.
#
# Called by image/build.sh (`make image`) on a machine with no container daemon and no registry:
# mmdebstrap installs Debian's own python3 (3.11 on bookworm, so the host's cp311 wheels fit) from
# the Debian mirror this machine's apt is configured with (/etc/apt/sources.list(.d)), so no
# mirror host is written down here. The Containerfile's stages then run on top of this tree
# exactly as they run on `debian:bookworm-slim` for Docker and Podman users.
#
# Usage: image/base-rootfs.sh OUT.tar
set -euo pipefail

out=${1:?usage: base-rootfs.sh OUT.tar}

# python3-venv makes the build stage's virtualenv; ca-certificates lets `modelops fetch` verify https;
# libstdc++6 is what the numpy, scipy and pyarrow wheels link to (apt pulls it into debian:*-slim).
packages=python3,python3-venv,ca-certificates,libstdc++6

sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  # Only Debian's own archive: other repositories configured on the host are not for the image.
  [[ -s $f ]] && grep -qE '^[^#]*debian' "$f" && sources+=("$f")
done
if [[ ${#sources[@]} -eq 0 ]]; then
  echo "base-rootfs.sh: no Debian apt source in /etc/apt/sources.list(.d); configure one first" >&2
  exit 1
fi

# "essential" plus python3: no apt, no perl in the image. Docs, manuals and translations are
# dropped (copyright files kept); SOURCE_DATE_EPOCH makes file times reproducible.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
mmdebstrap --quiet --mode=root --format=tar --variant=essential --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*' \
  bookworm "$out.partial" "${sources[@]}"
mv "$out.partial" "$out"
