"""KServe peer for the serving benchmark: a custom kserve.Model that predicts exactly as KServe's
own sklearn server (kserve/sklearnserver) does. Runs in the benchmark's KServe venv, not ours.

Started by benchmarks/serving/run.py as
``python kserve_model.py --model_path model.joblib --model_name iris --http_port P --workers N ...``
(``--model_name`` and the server flags belong to kserve's own argument parser).
"""

import argparse

import joblib
from kserve import Model, ModelServer, model_server
from kserve.utils.utils import get_predict_input, get_predict_response


class SKLearnModel(Model):  # type: ignore[misc]
    """Like kserve's sklearnserver.SKLearnModel: load with joblib, predict on the decoded input."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        self._model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):  # type: ignore[no-untyped-def]
        instances = get_predict_input(payload)
        result = self._model.predict(instances)
        return get_predict_response(payload, result, self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    ModelServer().start([SKLearnModel(args.model_name, args.model_path)])
