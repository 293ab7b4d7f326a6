"""Run a modelops image from its OCI archive without a container daemon: umoci unpacks, runc runs.

Used by tests/image (and by hand) to prove an archive from `make image` works the way a kubelet
would run it: the image's own user (65532) and entry point, a read-only root filesystem, a tmpfs
/tmp, no capabilities, no new privileges. The container shares the host's network namespace so a
test can reach a server on loopback.

    python3 image/run.py unpack dist/modelops-server-0.1.0.oci.tar /tmp/srv
    python3 image/run.py run /tmp/srv [--volume HOST:CONTAINER[:ro]] [--entrypoint PROG] -- serve /models

Without `-- ARGS` the image's CMD runs.

Needs root (runc, umoci), as `make image` does. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REF_ANNOTATION = "org.opencontainers.image.ref.name"


def image_ref(layout: Path) -> str:
    """The one image name in an OCI layout's index (what `kind load image-archive` imports)."""
    manifests = json.loads((layout / "index.json").read_text())["manifests"]
    refs = [m.get("annotations", {}).get(REF_ANNOTATION) for m in manifests]
    if len(refs) != 1 or not refs[0]:
        raise SystemExit(f"{layout}: expected exactly one named image in index.json, found {refs}")
    return str(refs[0])


def image_config(layout: Path) -> dict[str, Any]:
    """The image's config (User, Entrypoint, Cmd, Env, Labels) read from the layout's blobs."""

    def blob(digest: str) -> dict[str, Any]:
        algo, _, hexdigest = digest.partition(":")
        data: dict[str, Any] = json.loads((layout / "blobs" / algo / hexdigest).read_text())
        return data

    index = json.loads((layout / "index.json").read_text())
    manifest = blob(index["manifests"][0]["digest"])
    return blob(manifest["config"]["digest"])


def unpack(archive: Path, into: Path) -> str:
    """Extract ``archive`` to ``into/layout`` and unpack its root filesystem to ``into/bundle``."""
    if into.exists():
        shutil.rmtree(into)
    layout = into / "layout"
    layout.mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(layout)], check=True)
    ref = image_ref(layout)
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{ref}", str(into / "bundle")],
                   check=True, stdout=subprocess.DEVNULL)
    return ref


def container_spec(into: Path, args: list[str], entrypoint: str | None,
                   volumes: list[str], env: list[str]) -> dict[str, Any]:
    """umoci's runtime spec for the image, hardened the way a restricted pod would run it."""
    spec: dict[str, Any] = json.loads((into / "bundle" / "config.json").read_text())
    config = image_config(into / "layout").get("config", {})
    command = [entrypoint] if entrypoint else list(config.get("Entrypoint") or [])
    spec["process"]["args"] = command + (args or list(config.get("Cmd") or []))
    spec["process"]["env"] = [*spec["process"]["env"], *env]
    spec["process"]["terminal"] = False
    spec["process"]["noNewPrivileges"] = True
    spec["process"]["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
    spec["root"] = {"path": str((into / "bundle" / "rootfs").resolve()), "readonly": True}
    spec["hostname"] = "modelops"
    # Loopback of the host: the caller reaches a server in the container at 127.0.0.1.
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777", "size=256m"]})
    for volume in volumes:
        host, _, rest = volume.partition(":")
        target, _, mode = rest.partition(":")
        if not host or not target.startswith("/") or mode not in ("", "ro", "rw"):
            raise SystemExit(f"--volume {volume!r}: expected HOST:CONTAINER[:ro|rw] with an absolute CONTAINER path")
        spec["mounts"].append({"destination": target, "type": "bind", "source": str(Path(host).resolve()),
                               "options": ["rbind", "ro" if mode == "ro" else "rw"]})
    return spec


def run(into: Path, args: list[str], entrypoint: str | None = None, volumes: list[str] | None = None,
        env: list[str] | None = None) -> int:
    """Run one container from an unpacked image; SIGTERM/SIGINT go to it; returns its exit code."""
    spec = container_spec(into, args, entrypoint, volumes or [], env or [])
    state = into / "runc"
    state.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bundle-", dir=into) as bundle:
        (Path(bundle) / "config.json").write_text(json.dumps(spec))
        name = f"modelops-{os.getpid()}"
        proc = subprocess.Popen(["runc", "--root", str(state), "run", "--bundle", bundle, name])

        def forward(signum: int, _frame: object) -> None:
            proc.send_signal(signum)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, forward)
        code = proc.wait()
        subprocess.run(["runc", "--root", str(state), "delete", "--force", name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image/run.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p_unpack = commands.add_parser("unpack", help="extract an OCI archive and unpack its root filesystem")
    p_unpack.add_argument("archive", type=Path)
    p_unpack.add_argument("dir", type=Path)
    p_run = commands.add_parser("run", help="run a container from an unpacked image")
    p_run.add_argument("dir", type=Path)
    p_run.add_argument("--entrypoint", help="replace the image's entry point (e.g. python3)")
    p_run.add_argument("--volume", action="append", default=[], help="HOST:CONTAINER[:ro|rw] bind mount")
    p_run.add_argument("--env", action="append", default=[], help="NAME=VALUE added to the image's environment")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` belongs to the container (argparse would read its flags as ours).
    container_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    ns = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if ns.command == "unpack":
        print(unpack(ns.archive, ns.dir))
        return 0
    return run(ns.dir, container_args, ns.entrypoint, ns.volume, ns.env)


if __name__ == "__main__":
    sys.exit(main())
