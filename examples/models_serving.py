"""Bring a model trained elsewhere, register it, canary a new version, invoke with boto3.

Runs an embedded forestream server in this process (its state in a temporary
directory), so it needs nothing else:

    python examples/models_serving.py

Steps: train two scikit-learn versions of a churn model; import each as a version of the
``churn`` group (validated by loading it in a worker process); approve version 1; serve
version 1 with 90% of traffic and version 2 with 10%; invoke the endpoint with boto3's
``sagemaker-runtime`` client exactly as against SageMaker; then move all traffic to
version 2 without dropping a request.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import boto3
import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from forestream.server.embedded import EmbeddedServer


def call(server, method: str, path: str, body=None, raw: bytes | None = None):
    """One REST call; the server's access token goes in the Authorization header."""
    data = raw if raw is not None else (json.dumps(body).encode() if body else None)
    request = urllib.request.Request(server.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(request) as response:
        payload = response.read()
        return json.loads(payload) if payload else None


def import_model(server, path: Path, group: str, sample: list) -> dict:
    upload = call(server, "POST", f"/api/v1/models/uploads?filename={path.name}",
                  raw=path.read_bytes())
    import base64

    return call(server, "POST", f"/api/v1/models/groups/{group}/versions", {
        "source": upload["source"], "trust": True,  # joblib = pickle: we made it ourselves
        "sample_input_b64": base64.b64encode(json.dumps(sample).encode()).decode(),
        "sample_content_type": "application/json",
        "metadata": {"generated_by": "examples/models_serving.py"}})


def wait_in_service(server, name: str) -> None:
    while (status := call(server, "GET", f"/api/v1/endpoints/{name}")["status"]) != "InService":
        if status == "Failed":
            raise SystemExit(call(server, "GET", f"/api/v1/endpoints/{name}")["failure_reason"])
        time.sleep(0.2)


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.8).astype(int)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        joblib.dump(LogisticRegression().fit(X, y), tmp / "churn-v1.joblib")
        joblib.dump(RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y),
                    tmp / "churn-v2.joblib")
        server = EmbeddedServer(tmp / "data")
        server.start()
        try:
            url = server.url
            for path in (tmp / "churn-v1.joblib", tmp / "churn-v2.joblib"):
                v = import_model(server, path, "churn", X[:2].tolist())
                print(f"imported {v['ref']}: {v['framework']} {v['framework_version']}, "
                      f"{v['size_bytes']:,} bytes, signature {v['signature']}")
            call(server, "PATCH", "/api/v1/models/groups/churn/versions/1",
                 {"approval_status": "Approved", "approval_description": "baseline"})

            call(server, "POST", "/api/v1/endpoints", {"name": "churn", "variants": [
                {"variant_name": "v1", "model": "churn:1", "weight": 9},
                {"variant_name": "v2", "model": "churn:2", "weight": 1}]})
            wait_in_service(server, "churn")

            runtime = boto3.client("sagemaker-runtime", endpoint_url=url,
                                   region_name="us-east-1", aws_access_key_id="local",
                                   aws_secret_access_key="local")
            served = Counter()
            for row in X[:200]:
                answer = runtime.invoke_endpoint(EndpointName="churn",
                                                 ContentType="text/csv",
                                                 Body=",".join(f"{v:.6f}" for v in row))
                served[answer["InvokedProductionVariant"]] += 1
            print(f"canary split over 200 requests: {dict(sorted(served.items()))}")

            proba = runtime.invoke_endpoint(EndpointName="churn", TargetVariant="v2",
                                            ContentType="application/json",
                                            Body=json.dumps(X[:3].tolist()),
                                            CustomAttributes="method=predict_proba")
            print(f"v2 probabilities for 3 customers: {proba['Body'].read().decode()}")

            call(server, "PATCH", "/api/v1/endpoints/churn", {"weights": {"v1": 0, "v2": 1}})
            answer = runtime.invoke_endpoint(EndpointName="churn", ContentType="text/csv",
                                             Body="0.1,0.2,0.3,0.4")
            print(f"after the switch: served by {answer['InvokedProductionVariant']}, "
                  f"prediction {answer['Body'].read().decode()}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
