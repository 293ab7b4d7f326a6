"""Build the local control plane's binaries from their Go modules, once per version.

kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, and the node's kubelet and
kube-proxy come from k8s.io/kubernetes
(through the module in gomod/kubernetes, whose replaces pin each staging module), etcd from
go.etcd.io/etcd/server/v3 and kwok from sigs.k8s.io/kwok. Binaries are cached in the user cache
dir keyed by version, so a warm run builds nothing; `.cluster/bin/` links to them.
Called by `make cluster-binaries`, by `localcluster.up()` and so by the pytest session fixture.

The install tools are a second group, built only when asked (`make tools`, `python -m
devcluster.build tools`, and the tests that need them): helm from helm.sh/helm/v3/cmd/helm (chart
lint and template) and the kstatus probe in tests/gitops/kstatus (Flux's readiness computation).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOMOD = HERE / "gomod"
KSTATUS = REPO / "tests" / "gitops" / "kstatus"


def versions() -> dict[str, str]:
    """The pinned versions, read from versions.env (the one place they are named)."""
    out: dict[str, str] = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _source_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.suffix == ".go" or path.name in ("go.mod", "go.sum"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:8]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelops" / "bin"


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    module_dir: Path
    packages: dict[str, str]  # binary name -> Go package
    ldflags: str = "-s -w"

    @property
    def directory(self) -> Path:
        return cache_dir() / f"{self.name}-v{self.version}"

    def missing(self) -> list[str]:
        return [b for b in self.packages if not (self.directory / b).is_file()]


def components(group: str = "cluster") -> list[Component]:
    """The binaries of one group: "cluster" (the control plane) or "tools" (helm, kstatus probe)."""
    v = versions()
    if group == "tools":
        return [
            Component("helm", v["HELM_VERSION"], GOMOD / "helm", {"helm": "helm.sh/helm/v3/cmd/helm"}),
            # The probe's source is ours: a change to it must not reuse a cached build.
            Component("kstatus", f"{v['CLI_UTILS_VERSION']}-{_source_hash(KSTATUS)}", KSTATUS,
                      {"kstatus": "."}),
        ]
    if group != "cluster":
        raise ValueError(f"unknown binary group {group!r} (cluster or tools)")
    k8s = v["KUBERNETES_VERSION"]
    major, minor, _ = k8s.split(".")
    stamp = " ".join(
        f"-X {pkg}.{key}={value}"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in (("gitVersion", f"v{k8s}"), ("gitMajor", major), ("gitMinor", minor),
                           ("gitTreeState", "clean"))
    )
    return [
        Component("etcd", v["ETCD_VERSION"], GOMOD / "etcd", {"etcd": "go.etcd.io/etcd/server/v3"}),
        Component("kwok", v["KWOK_VERSION"], GOMOD / "kwok", {"kwok": "sigs.k8s.io/kwok/cmd/kwok"}),
        Component(
            "kubernetes",
            k8s,
            GOMOD / "kubernetes",
            {name: f"k8s.io/kubernetes/cmd/{name}"
             for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
                         "kubelet", "kube-proxy")},
            ldflags=f"-s -w {stamp}",
        ),
    ]


class BuildError(Exception):
    """A Go build of a control-plane binary failed."""


def _build(component: Component, binary: str) -> None:
    out = component.directory / binary
    tmp = out.with_suffix(".partial")
    cmd = ["go", "build", "-v", "-trimpath", f"-ldflags={component.ldflags}", "-o", str(tmp),
           component.packages[binary]]
    env = {**os.environ, "GOFLAGS": "-buildvcs=false"}
    started = time.monotonic()
    print(f"  building {binary} v{component.version} (Go, cached after this) ...", flush=True)
    proc = subprocess.Popen(cmd, cwd=component.module_dir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    last = 0.0
    for compiled, line in enumerate(proc.stdout, 1):
        tail = [*tail[-30:], line.rstrip()]
        now = time.monotonic()
        if now - last > 15:
            print(f"    {binary}: {compiled} packages, {now - started:.0f}s", flush=True)
            last = now
    if proc.wait() != 0:
        raise BuildError(f"go build of {binary} failed:\n" + "\n".join(tail))
    tmp.rename(out)
    print(f"  built {binary} in {time.monotonic() - started:.0f}s", flush=True)


def ensure_binaries(bin_dir: Path | None = None, group: str = "cluster") -> Path:
    """Build what is missing from the cache and link every binary of `group` into `bin_dir`."""
    bin_dir = bin_dir or REPO / ".cluster" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for component in components(group):
        component.directory.mkdir(parents=True, exist_ok=True)
        for binary in component.missing():
            _build(component, binary)
        for binary in component.packages:
            link = bin_dir / binary
            target = component.directory / binary
            if link.is_symlink() or link.exists():
                if link.resolve() == target:
                    continue
                link.unlink()
            link.symlink_to(target)
    return bin_dir


if __name__ == "__main__":
    started = time.monotonic()
    chosen = sys.argv[1] if len(sys.argv) > 1 else "cluster"
    try:
        where = ensure_binaries(group=chosen)
    except BuildError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    print(f"{chosen} binaries ready in {where} ({time.monotonic() - started:.0f}s)")
