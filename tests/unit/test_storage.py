"""pvc:// URIs as real volumes (read-only for servers) and credentials from a Secret, in the pure builders."""

from __future__ import annotations

import pytest
from modelops.api.spec import ModelDeploymentSpec
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.uri import parse_pvc_uri
from modelops.resources.builders import deployment
from modelops.resources.volumes import pvc_volume
from pydantic import ValidationError


def test_pvc_volume_mounts_the_claim_where_fetch_resolves_the_uri() -> None:
    volume, mount, local = pvc_volume("pvc://models/iris/2/model.skops", read_only=True)
    assert volume == {"name": "model-store", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}}
    assert mount == {"name": "model-store", "mountPath": "/mnt/pvc/models", "readOnly": True}
    assert local == "/mnt/pvc/models/iris/2/model.skops"
    volume, mount, local = pvc_volume("pvc://train-data/", read_only=False, name="data")
    assert volume["persistentVolumeClaim"]["readOnly"] is False and mount["readOnly"] is False
    assert local == "/mnt/pvc/train-data"


@pytest.mark.parametrize("uri", ["pvc://../x", "pvc:///etc/passwd", "pvc://a/../../x", "pvc://UPPER/x",
                                 "pvc://a//etc/x", "pvc://a%2Fb/x", "s3://bucket/x"])
def test_uris_that_leave_their_claim_are_refused(uri: str) -> None:
    with pytest.raises(ArtifactError, match=uri.split("/")[0]):
        parse_pvc_uri(uri)


def _spec(**model: object) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate({"model": {"name": "iris", "version": "1", "format": "skops", **model}})


def test_serving_pods_mount_the_model_claim_read_only_and_read_credentials_from_the_secret() -> None:
    spec = _spec(uri="pvc://models/iris/model.skops", credentialsSecret="s3-creds")
    pod = deployment("iris", "ns", "uid-1", spec, "abc123", 2)["spec"]["template"]["spec"]
    assert {"name": "model-store", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in pod["volumes"]
    fetch = pod["initContainers"][0]
    assert {"name": "model-store", "mountPath": "/mnt/pvc/models", "readOnly": True} in fetch["volumeMounts"]
    # The server reads the fetched copy; it never mounts the store.
    assert all(m["name"] != "model-store" for m in pod["containers"][0]["volumeMounts"])
    for container in (fetch, pod["containers"][0]):
        assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]


def test_network_uris_add_no_volume_and_no_secret_by_default() -> None:
    pod = deployment("iris", "ns", "uid-1", _spec(uri="s3://bucket/iris/model.skops"), "abc123", 1)
    template = pod["spec"]["template"]["spec"]
    assert [v["name"] for v in template["volumes"]] == ["models", "tmp"]
    assert "envFrom" not in template["containers"][0] and "envFrom" not in template["initContainers"][0]


def test_a_pvc_uri_outside_its_claim_is_refused_by_the_api_model() -> None:
    with pytest.raises(ValidationError, match=r"must not contain '\.\.'"):
        _spec(uri="pvc://models/../other/model.skops")
    with pytest.raises(ValidationError, match=r"credentials_secret|credentialsSecret"):
        _spec(uri="s3://bucket/m.skops", credentialsSecret="Not_A_Name")
