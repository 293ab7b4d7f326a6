"""`kubectl modelops` against the real API server: the views of a status written as the controller
writes it, and the command annotations the plugin writes (never spec). No operator runs here: the
test plays the controller's part by patching status itself."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.localcluster import Cluster
from tests.conftest import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "manifests" / "samples" / "iris.yaml"
PLUGIN = Path(sys.executable).parent / "kubectl-modelops"
V0, V1, V2 = "0a0a0a0a0a", "1b1b1b1b1b", "2c2c2c2c2c"


def at(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def model(version: str) -> dict[str, Any]:
    return {"name": "iris", "version": version, "uri": f"pvc://models/iris/{version}/model.skops", "format": "skops"}


def canary_status() -> dict[str, Any]:
    """v2 at 10% in the sample's 30s pause (step 2 of 4), analysis failing on errors; v0 and v1 served before."""
    message = f"canary v2 ({V2}) at 10% (observed 10%), step 2/4 pause 30s"

    def condition(type_: str, status: str, reason: str, text: str) -> dict[str, Any]:
        return {"type": type_, "status": status, "reason": reason, "message": text, "lastTransitionTime": at(60)}

    return {
        "observedGeneration": 1,
        "phase": "Progressing",
        "message": message,
        "stable": {"revision": V1, "modelVersion": "1", "replicas": 2, "readyReplicas": 2, "model": model("1")},
        "canary": {"revision": V2, "modelVersion": "2", "weight": 10, "observedWeight": 10, "stepIndex": 1,
                   "stepStartedAt": at(5), "replicas": 1, "readyReplicas": 1, "model": model("2")},
        "analysis": {"phase": "Running", "successes": 1, "failures": 1, "inconclusives": 0, "lastRunAt": at(3),
                     "metrics": [{"name": "errors", "value": 0.031, "stableValue": 0.002, "limit": "max 0.02",
                                  "verdict": "Failed", "samples": 240, "message": "errors = 0.031 above max 0.02",
                                  "measuredAt": at(3)}]},
        "conditions": [condition("Ready", "True", "CanaryProgressing", message),
                       condition("Progressing", "True", "CanaryProgressing", message)],
        "history": [
            {"revision": V0, "modelVersion": "0", "outcome": "Deployed", "at": at(7200),
             "uri": model("0")["uri"], "format": "skops"},
            {"revision": V1, "modelVersion": "1", "outcome": "Promoted", "reason": "all steps passed",
             "at": at(3600), "uri": model("1")["uri"], "format": "skops"},
        ],
        "handledCommands": {},
    }


@pytest.fixture
def mdep(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """The iris sample with v2 in spec and a canary status, as if an operator had been at work."""
    manifest = yaml.safe_load(SAMPLE.read_text())
    manifest["spec"]["model"] = model("2")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    patch = {"status": canary_status()}
    cluster.kubectl("patch", "mdep", "iris", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps(patch))
    return get(cluster, namespace)


def get(cluster: Cluster, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(cluster.kubectl("get", "mdep", "iris", "-n", namespace, "-o", "json"))
    return result


def plugin(cluster: Cluster, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PLUGIN), *args, "--kubeconfig", str(cluster.kubeconfig)], capture_output=True,
                          text=True, timeout=120, env=env)


def test_status_and_history_show_the_canary_as_written(cluster: Cluster, namespace: str,
                                                       mdep: dict[str, Any]) -> None:
    shown = plugin(cluster, "status", "iris", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:4] == ["Name:         iris", f"Namespace:    {namespace}",
                         "Model:        iris v2 (skops, pvc://models/iris/2/model.skops), 2 replicas",
                         "Phase:        Progressing"]
    assert f"  Revision:   {V2}" in lines
    assert "  Weight:     10% desired, 10% observed" in lines
    step = next(line for line in lines if line.startswith("  Step:"))
    assert step.startswith("  Step:       2/4 pause 30s, started ") and "s left (until " in step
    errors = next(line for line in lines if line.startswith("  errors "))
    assert errors.split()[:7] == ["errors", "0.031", "0.002", "max", "0.02", "Failed", "240"]
    assert "  errors: errors = 0.031 above max 0.02" in lines
    assert any(line.split()[:3] == ["Progressing", "True", "CanaryProgressing"] for line in lines)

    history = plugin(cluster, "history", "iris", "-n", namespace)
    assert history.returncode == 0, history.stderr
    rows = [line.split()[:3] for line in history.stdout.splitlines()]
    assert rows[:3] == [["REVISION", "VERSION", "OUTCOME"], [V0, "0", "Deployed"], [V1, "1", "Promoted"]]
    assert f"canary now: v2 ({V2})" in history.stdout


def test_kubectl_finds_the_plugin_and_the_namespace_comes_from_the_context(
    cluster: Cluster, namespace: str, mdep: dict[str, Any], tmp_path: Path
) -> None:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    current = config["current-context"]
    for context in config["contexts"]:
        if context["name"] == current:
            context["context"]["namespace"] = namespace
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ['PATH']}", "KUBECONFIG": str(kubeconfig)}
    kubectl = str(cluster.bin / "kubectl")
    shown = subprocess.run([kubectl, "modelops", "status", "iris"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert f"Namespace:    {namespace}" in shown.stdout and "Phase:        Progressing" in shown.stdout


def annotations(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in obj["metadata"].get("annotations", {}).items()
            if k.startswith("modelops.dev/")}


def test_commands_write_annotations_and_leave_spec_alone(cluster: Cluster, namespace: str,
                                                         mdep: dict[str, Any]) -> None:
    abort = plugin(cluster, "abort", "iris", "-n", namespace)
    assert abort.returncode == 0, abort.stderr
    assert f'abort requested on modeldeployment "iris" in namespace "{namespace}"' in abort.stdout
    promote = plugin(cluster, "promote", "iris", "--full", "-n", namespace)
    assert promote.returncode == 0, promote.stderr
    undo = plugin(cluster, "undo", "iris", "--to-revision", V0, "-n", namespace)
    assert undo.returncode == 0, undo.stderr

    after = get(cluster, namespace)
    written = annotations(after)
    assert set(written) == {"modelops.dev/abort", "modelops.dev/promote", "modelops.dev/undo"}
    assert written["modelops.dev/promote"]["value"] == "full"
    assert written["modelops.dev/undo"]["value"] == V0
    assert written["modelops.dev/abort"]["value"] == ""
    nonces = {entry["nonce"] for entry in written.values()}
    assert len(nonces) == 3 and all(nonces)
    for entry in written.values():
        assert f"(request {entry['nonce']})" in abort.stdout + promote.stdout + undo.stdout
    # Git owns spec: neither spec nor generation moved.
    assert after["spec"] == mdep["spec"]
    assert after["metadata"]["generation"] == mdep["metadata"]["generation"]

    # Asking again is a new request: a new nonce in the same annotation.
    again = plugin(cluster, "abort", "iris", "-n", namespace)
    assert again.returncode == 0, again.stderr
    assert annotations(get(cluster, namespace))["modelops.dev/abort"]["nonce"] != written["modelops.dev/abort"]["nonce"]


def test_errors_name_what_is_wrong(cluster: Cluster, namespace: str, mdep: dict[str, Any]) -> None:
    unknown = plugin(cluster, "undo", "iris", "--to-revision", "ffffffffff", "-n", namespace)
    assert unknown.returncode == 1
    assert "no revision ffffffffff in history" in unknown.stderr and V0 in unknown.stderr
    missing = plugin(cluster, "status", "nosuch", "-n", namespace)
    assert missing.returncode == 1
    assert f'modeldeployment "nosuch" in namespace "{namespace}" not found' in missing.stderr
    retry = plugin(cluster, "retry", "iris", "-n", namespace)
    assert retry.returncode == 1 and "no aborted canary to retry" in retry.stderr
    assert annotations(get(cluster, namespace)) == {}  # a refused request writes nothing


def post_event(cluster: Cluster, namespace: str, obj: dict[str, Any], reason: str, message: str) -> None:
    """An Event on the ModelDeployment as the controller posts one (modelops.controller.kube.post_event)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = obj["metadata"]
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": "iris.", "namespace": namespace},
        "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
                           "namespace": namespace, "uid": meta["uid"]},
        "reason": reason, "message": message, "type": "Normal", "count": 1,
        "firstTimestamp": now, "lastTimestamp": now, "source": {"component": "modelops"},
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(event))


def wait_as_the_controller(cluster: Cluster, namespace: str, command: str, status: dict[str, Any],
                           reason: str, message: str) -> tuple[int, str, str]:
    """Run `COMMAND --wait`; once its annotation is there, take the request as the controller does
    (status with handledCommands, then an Event) and return the plugin's exit code and output."""
    proc = subprocess.Popen([str(PLUGIN), command, "iris", "-n", namespace, "--wait", "--timeout", "90",
                             "--kubeconfig", str(cluster.kubeconfig)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        nonce = wait_for(lambda: annotations(get(cluster, namespace)).get(f"modelops.dev/{command}", {}).get("nonce"),
                         f"the {command} annotation")
        assert proc.poll() is None  # still waiting: nothing has handled it yet
        cluster.kubectl("patch", "mdep", "iris", "-n", namespace, "--subresource=status", "--type=merge", "-p",
                        json.dumps({"status": {**status, "handledCommands": {command: nonce}}}))
        post_event(cluster, namespace, get(cluster, namespace), reason, message.format(nonce=nonce))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_wait_reports_a_request_the_controller_acted_on(cluster: Cluster, namespace: str,
                                                        mdep: dict[str, Any]) -> None:
    code, out, err = wait_as_the_controller(
        cluster, namespace, "pause", {"phase": "Paused", "message": "paused by user", "canary": {"paused": True}},
        "CommandHandled", "pause (request {nonce})")
    assert code == 0, err
    assert "Done: the controller acted on it. Phase Paused: paused by user" in out


def test_wait_reports_a_request_the_controller_ignored(cluster: Cluster, namespace: str,
                                                       mdep: dict[str, Any]) -> None:
    code, out, err = wait_as_the_controller(cluster, namespace, "resume", {}, "CommandIgnored",
                                            "resume ignored: nothing is paused")
    assert code == 1, err
    assert "The controller ignored it: resume ignored: nothing is paused" in out


def test_wait_without_an_operator_gives_up_and_says_so(cluster: Cluster, namespace: str,
                                                       mdep: dict[str, Any]) -> None:
    waited = plugin(cluster, "pause", "iris", "-n", namespace, "--wait", "--timeout", "2")
    assert waited.returncode == 1
    assert "has not handled pause" in waited.stderr and "is the operator running?" in waited.stderr


def test_watch_rerenders_on_change_and_stops_on_ctrl_c(cluster: Cluster, namespace: str,
                                                        mdep: dict[str, Any]) -> None:
    proc = subprocess.Popen([str(PLUGIN), "status", "iris", "-n", namespace, "--watch",
                             "--kubeconfig", str(cluster.kubeconfig)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read(stream: Any) -> None:
        for line in stream:
            lines.put(line)

    # A reader thread, so waiting for a line never blocks past wait_for's deadline.
    threading.Thread(target=read, args=(proc.stdout,), daemon=True).start()
    seen: list[str] = []

    def saw(text: str) -> bool:
        while not lines.empty():
            seen.append(lines.get())
        return any(text in line for line in seen)

    try:
        wait_for(lambda: saw("Phase:        Progressing"), "the first view")
        cluster.kubectl("patch", "mdep", "iris", "-n", namespace, "--subresource=status", "--type=merge", "-p",
                        json.dumps({"status": {"phase": "Aborted", "message": "canary v2 aborted: errors",
                                               "canary": {"aborted": True, "abortReason": "errors", "weight": 0}}}))
        wait_for(lambda: saw("Phase:        Aborted"), "the view redrawn after the status changed")
        assert any(line.startswith("  State:      ABORTED: errors") for line in seen)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
