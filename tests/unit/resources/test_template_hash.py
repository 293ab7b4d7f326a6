"""A Deployment carries the hash of the pod template this operator version builds, so that a new
operator version that builds a different template rolls running revisions out on purpose."""

from __future__ import annotations

from modelops.api.spec import ModelDeploymentSpec
from modelops.resources.builders import TEMPLATE_HASH, deployment

SPEC = ModelDeploymentSpec.model_validate(
    {"model": {"name": "iris", "version": "1", "uri": "file:///m/model.skops", "format": "skops"}})


def test_the_template_hash_follows_the_template_and_not_the_replicas() -> None:
    one = deployment("iris", "ns", "uid", SPEC, "abc", 1)
    three = deployment("iris", "ns", "uid", SPEC, "abc", 3)
    assert one["metadata"]["annotations"][TEMPLATE_HASH] == three["metadata"]["annotations"][TEMPLATE_HASH]
    image = SPEC.model_copy(update={"serving": SPEC.serving.model_copy(update={"image": "other:2"})})
    other = deployment("iris", "ns", "uid", image, "abc", 1)
    assert other["metadata"]["annotations"][TEMPLATE_HASH] != one["metadata"]["annotations"][TEMPLATE_HASH]
