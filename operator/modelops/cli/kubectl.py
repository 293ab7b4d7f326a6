"""`kubectl-modelops`: the kubectl plugin SREs use to watch and steer ModelDeployment rollouts.

kubectl finds this console script on PATH and runs it as `kubectl modelops ...`. `status` and
`history` read the object and print the pure views of modelops.cli.kubectl_view; `promote`,
`abort`, `pause`, `resume`, `retry` and `undo` write one command annotation
(modelops.cli.kubectl_requests) that the controller acts on at its next reconcile. Only
annotations are written, never spec: Git owns spec. This module is the I/O shell (official
`kubernetes` client); everything it prints is computed by the pure modules.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TextIO

from pydantic import ValidationError

from modelops.api.kind import GROUP, PLURAL, VERSION
from modelops.api.timefmt import as_utc, parse_time, utc_now
from modelops.cli import kubectl_retrain
from modelops.cli.kubectl_requests import Request, handled, new_request, refusal
from modelops.cli.kubectl_view import parse_spec, parse_status, render_history, render_status
from modelops.retraining.observed import COMMAND_APPROVE, COMMAND_RETRAIN, RETRAIN_RESET
from modelops.rollout.commands import (
    COMMAND_ABORT,
    COMMAND_PAUSE,
    COMMAND_PROMOTE,
    COMMAND_RESUME,
    COMMAND_RETRY,
    COMMAND_UNDO,
    PROMOTE_FULL,
    PROMOTE_STEP,
)

PROG = "kubectl modelops"
CLEAR_SCREEN = "\x1b[H\x1b[2J"
EVENT_COMMAND_HANDLED = "CommandHandled"  # reasons of the controller's Events (modelops.rollout.events)
EVENT_COMMAND_IGNORED = "CommandIgnored"
EVENT_GRACE_SECONDS = 10.0  # how long --wait looks for the controller's Event after status says handled


class PluginError(Exception):
    """Something the user must fix or know; printed as `error: ...` with exit code 1."""


@dataclass
class Target:
    """The ModelDeployment a command is about, and the API client to reach it."""

    api: Any  # kubernetes.client.CustomObjectsApi
    core: Any  # kubernetes.client.CoreV1Api
    namespace: str
    name: str

    def get(self) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                                        self.name)
        except ApiException as error:
            raise _api_error(error, self) from error
        return obj

    def patch(self, body: dict[str, Any]) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self.api.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, body,
                _content_type="application/merge-patch+json",
            )
        except ApiException as error:
            raise _api_error(error, self) from error
        return obj

    def relist(self) -> tuple[dict[str, Any] | None, str]:
        """The object (None when gone) and a current resourceVersion to watch from after a 410 Gone:
        the collection's, which is fresh even when the object itself has not changed for long."""
        from kubernetes.client.exceptions import ApiException

        try:
            listed = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                            field_selector=f"metadata.name={self.name}")
        except ApiException as error:
            raise _api_error(error, self) from error
        items = listed.get("items") or []
        return (dict(items[0]) if items else None), str(listed["metadata"]["resourceVersion"])

    def watch(self, resource_version: str, timeout_seconds: int | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, object) for changes of this one object after `resource_version`."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        watcher = watch.Watch()  # type: ignore[no-untyped-call]
        kwargs: dict[str, Any] = {"field_selector": f"metadata.name={self.name}", "resource_version": resource_version}
        if timeout_seconds is not None:
            kwargs["timeout_seconds"] = timeout_seconds
        try:
            events = watcher.stream(  # type: ignore[no-untyped-call]
                self.api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, **kwargs
            )
            for event in events:
                yield str(event["type"]), dict(event["object"])
        except ApiException as error:
            raise _api_error(error, self) from error
        finally:
            watcher.stop()  # type: ignore[no-untyped-call]


def _api_error(error: Any, target: Target) -> Exception:
    from kubernetes.client.exceptions import ApiException

    assert isinstance(error, ApiException)
    where = f'modeldeployment "{target.name}" in namespace "{target.namespace}"'
    if error.status == 404:
        body = str(error.body or "")
        if f'"name":"{target.name}"' in body.replace(" ", "") or f'"{target.name}" not found' in body:
            return PluginError(f"{where} not found")
        return PluginError(f"{where}: the API server does not know {PLURAL}.{GROUP}/{VERSION}; is the CRD installed?")
    if error.status == 410:
        return ResourceExpired(str(error.reason))
    if error.status in (401, 403):
        return PluginError(f"{where}: not allowed ({error.status} {error.reason}); check your kubeconfig user")
    return PluginError(f"{where}: API server said {error.status} {error.reason}")


class ResourceExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): read the object again and watch from there."""


# ------------------------------------------------------------------ connecting


def connect(kubeconfig: str | None, context: str | None, namespace: str | None, name: str) -> Target:
    """A client for the kubeconfig (KUBECONFIG or ~/.kube/config when None) and the namespace to use."""
    from kubernetes import client, config

    try:
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
        if namespace is None:
            namespace = _context_namespace(kubeconfig, context)
    except (config.ConfigException, OSError) as error:
        source = kubeconfig or "KUBECONFIG / ~/.kube/config"
        raise PluginError(f"cannot load kubeconfig from {source}: {error}") from error
    return Target(client.CustomObjectsApi(api_client), client.CoreV1Api(api_client), namespace, name)


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the chosen (or current) kubeconfig context, as kubectl picks it; else "default"."""
    from kubernetes import config

    contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else "default"


# ------------------------------------------------------------------ commands


def _status(args: argparse.Namespace, target: Target, out: TextIO) -> int:
    obj = target.get()
    _print_status(obj, out)
    if not args.watch:
        return 0
    # On a terminal each change redraws the screen; into a pipe, views follow one another.
    before = CLEAR_SCREEN if out.isatty() else "\n"

    def ctrl_c(signum: int, frame: Any) -> None:
        # Ctrl-C is how a watch ends, not an error, and a read-only watch has nothing to clean up: exit
        # at once. A KeyboardInterrupt that lands in a finalizer is swallowed, and the watch goes on.
        out.write("\n")
        out.flush()
        os._exit(0)

    signal.signal(signal.SIGINT, ctrl_c)
    for event_type, changed in _follow(target, obj):
        if event_type == "DELETED":
            raise PluginError(f'modeldeployment "{target.name}" in namespace "{target.namespace}" was deleted')
        _print_status(changed, out, before)
    return 0


def _follow(target: Target, obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every change of the object after `obj`, across watch reconnects and expired resource versions."""
    version = str(obj["metadata"]["resourceVersion"])
    while True:
        try:
            for event_type, changed in target.watch(version):
                if event_type == "BOOKMARK":
                    version = str(changed["metadata"]["resourceVersion"])
                    continue
                if event_type in ("ADDED", "MODIFIED", "DELETED"):
                    new_version = str(changed["metadata"]["resourceVersion"])
                    if new_version == version and event_type != "DELETED":
                        continue
                    version, obj = new_version, changed
                    yield event_type, changed
                    if event_type == "DELETED":
                        return
        except ResourceExpired:
            fresh, version = target.relist()
            if fresh is None:
                yield "DELETED", obj
                return
            if str(fresh["metadata"]["resourceVersion"]) != str(obj["metadata"]["resourceVersion"]):
                obj = fresh
                yield "MODIFIED", fresh


def _print_status(obj: dict[str, Any], out: TextIO, before: str = "") -> None:
    try:
        text = render_status(obj, utc_now())
    except ValidationError as error:
        raise PluginError(f"the status of {obj['metadata'].get('name')} does not parse: {error}") from error
    out.write(before + text)
    out.flush()  # a watch prints into a pipe too (tests, `| tee`)


def _history(args: argparse.Namespace, target: Target, out: TextIO) -> int:
    obj = target.get()
    try:
        out.write(render_history(obj, utc_now()))
    except ValidationError as error:
        raise PluginError(f"the status of {target.name} does not parse: {error}") from error
    return 0


def _command(command: str, value: Callable[[argparse.Namespace], str]) -> Callable[..., int]:
    def run(args: argparse.Namespace, target: Target, out: TextIO) -> int:
        return _request(new_request(command, value(args)), args, target, out)

    return run


def _retrain(args: argparse.Namespace, target: Target, out: TextIO) -> int:
    if args.export:
        try:
            out.write(kubectl_retrain.export_patch(target.get(), args.output))
        except (ValueError, ValidationError) as error:
            raise PluginError(str(error)) from error
        return 0
    return _request(new_request(COMMAND_RETRAIN, RETRAIN_RESET if args.reset else ""), args, target, out)


def _request(request: Request, args: argparse.Namespace, target: Target, out: TextIO) -> int:
    obj = target.get()
    status = _parse_status(obj)
    retraining = request.command in (COMMAND_RETRAIN, COMMAND_APPROVE)
    why_not = kubectl_retrain.refusal(request, parse_spec(obj), status) if retraining else refusal(request, status)
    what = kubectl_retrain.describe(request) if retraining else request.describe()
    if why_not is not None:
        raise PluginError(f"cannot {what} on {target.name}: {why_not}")
    patched = target.patch(request.patch())
    where = f'modeldeployment "{target.name}" in namespace "{target.namespace}"'
    out.write(f"{what} requested on {where} (request {request.nonce}).\n")
    if not args.wait:
        out.write(
            f"The controller acts on it at its next reconcile; follow with: "
            f"kubectl modelops status {target.name} -n {target.namespace} --watch\n"
        )
        return 0
    out.write("Waiting for the controller...\n")
    out.flush()
    final = _wait_handled(target, request, args.timeout)
    return _report_outcome(target, final, request, _written_at(patched), out)


def _parse_status(obj: dict[str, Any]) -> Any:
    try:
        return parse_status(obj)
    except ValidationError as error:
        raise PluginError(f"the status of {obj['metadata'].get('name')} does not parse: {error}") from error


def _wait_handled(target: Target, request: Request, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    current = target.get()  # our own patch moved the resourceVersion; start from it
    version = str(current["metadata"]["resourceVersion"])
    while not handled(_parse_status(current), request):
        left = int(deadline - time.monotonic())
        if left <= 0:
            raise PluginError(
                f"the controller has not handled {request.command} (request {request.nonce}) within "
                f"{timeout:.0f}s; is the operator running? The annotation stays; it will act when it runs."
            )
        try:
            for event_type, changed in target.watch(version, left):
                if event_type == "DELETED":
                    raise PluginError(f'modeldeployment "{target.name}" was deleted while waiting')
                if event_type in ("ADDED", "MODIFIED", "BOOKMARK"):
                    version = str(changed["metadata"]["resourceVersion"])
                if event_type in ("ADDED", "MODIFIED"):
                    current = changed
                    if handled(_parse_status(current), request):
                        break
        except ResourceExpired:
            fresh, version = target.relist()
            if fresh is None:
                raise PluginError(f'modeldeployment "{target.name}" was deleted while waiting') from None
            current = fresh
    return current


def _written_at(patched: dict[str, Any]) -> datetime:
    """When the API server recorded our patch: the newest managedFields time (the server's clock)."""
    times = [parse_time(str(f["time"])) for f in patched["metadata"].get("managedFields") or [] if f.get("time")]
    return max(times) if times else utc_now()


def _report_outcome(target: Target, obj: dict[str, Any], request: Request, written_at: datetime,
                    out: TextIO) -> int:
    """Handled means taken; whether it was accepted or ignored only the controller's Event says, and the
    controller posts its Events just after it writes status, so look for them a little while."""
    from kubernetes.client.exceptions import ApiException

    status = _parse_status(obj)
    deadline = time.monotonic() + EVENT_GRACE_SECONDS
    while True:
        try:
            events = target.core.list_namespaced_event(
                target.namespace, field_selector=f"involvedObject.name={target.name}"
            ).items
        except ApiException:
            events = []
        if any(e.reason == EVENT_COMMAND_HANDLED and request.nonce in (e.message or "") for e in events):
            out.write(f"Done: the controller acted on it. Phase {status.phase}: {status.message}\n")
            return 0
        # Ignored events do not carry the nonce: take one for this command posted after our request
        # (a second of slack: Event times have second precision).
        ignored = [e for e in events if e.reason == EVENT_COMMAND_IGNORED
                   and (e.message or "").startswith(f"{request.command} ignored")
                   and _posted_since(e, written_at - timedelta(seconds=1))]
        if ignored:
            out.write(f"The controller ignored it: {ignored[-1].message}\n")
            return 1
        if time.monotonic() > deadline:
            out.write(f"Done: the controller handled it. Phase {status.phase}: {status.message}\n")
            return 0
        time.sleep(0.5)


def _posted_since(event: Any, since: datetime) -> bool:
    moment = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
    return isinstance(moment, datetime) and as_utc(moment) >= since


# ------------------------------------------------------------------ the parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=None,
                        help="namespace of the ModelDeployment (default: the kubeconfig context's, else default)")
    common.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)")
    common.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
    waits = argparse.ArgumentParser(add_help=False)
    waits.add_argument("--wait", action="store_true",
                       help="wait until the controller has handled the request, then say what it did")
    waits.add_argument("--timeout", type=float, default=120.0, help="seconds --wait waits (default 120)")

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Watch and steer ModelDeployment rollouts. Requests are annotations the operator acts on; "
        "spec is never changed (Git owns it).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str, run: Callable[..., int], *parents: argparse.ArgumentParser) -> Any:
        sub = commands.add_parser(name, help=help_, description=help_, parents=[common, *parents])
        sub.add_argument("name", metavar="NAME", help="the ModelDeployment")
        sub.set_defaults(run=run)
        return sub

    status = add("status", "show a ModelDeployment's rollout at a glance", _status)
    status.add_argument("-w", "--watch", action="store_true", help="re-render on every change until Ctrl-C")
    add("history", "show the recent revisions and what became of them", _history)
    promote = add("promote", "move the canary on one step (or, with --full, to the end)",
                  _command(COMMAND_PROMOTE, lambda a: PROMOTE_FULL if a.full else PROMOTE_STEP), waits)
    promote.add_argument("--full", action="store_true", help="skip the remaining steps and analysis")
    add("abort", "put all traffic back on stable and stop the canary", _command(COMMAND_ABORT, lambda a: ""), waits)
    add("pause", "hold the canary at its current step", _command(COMMAND_PAUSE, lambda a: ""), waits)
    add("resume", "continue a paused (or stalled) canary", _command(COMMAND_RESUME, lambda a: ""), waits)
    add("retry", "start an aborted canary again from step 1", _command(COMMAND_RETRY, lambda a: ""), waits)
    undo = add("undo", "go back to an earlier revision (until spec changes)",
               _command(COMMAND_UNDO, lambda a: a.to_revision or ""), waits)
    undo.add_argument("--to-revision", default=None, metavar="REV",
                      help="revision from `history` (default: the previous one)")
    retrain = add("retrain", "start a retraining run now; `retrain export NAME` prints the retrained spec.model",
                  _retrain, waits)
    retrain.add_argument("export_name", nargs="?", default=None, metavar="NAME",
                         help="with `export` as the first word: the ModelDeployment")
    retrain.add_argument("--reset", action="store_true",
                         help="lift RetrainBlocked / DriftPersists and zero the rejection count; starts no run")
    retrain.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml", help="export format")
    add("approve", "send the recorded retrained candidate out through spec.rollout (promotion: Manual)",
        _command(COMMAND_APPROVE, lambda a: ""), waits)
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, turning `retrain export NAME` into the export of NAME."""
    args = build_parser().parse_args(argv)
    args.export = False
    if args.command == "retrain":
        if args.name == "export" and args.export_name:
            args.name, args.export = args.export_name, True
        elif args.export_name:
            build_parser().error(f"retrain takes one NAME (or `export NAME`), not {args.name!r} {args.export_name!r}")
        if args.export and args.reset:
            build_parser().error("retrain export does not take --reset")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from urllib3.exceptions import HTTPError

    args = parse_args(argv)
    try:
        target = connect(args.kubeconfig, args.context, args.namespace, args.name)
        code: int = args.run(args, target, sys.stdout)
    except PluginError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (OSError, HTTPError) as error:
        print(f"error: cannot reach the API server: {error}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
