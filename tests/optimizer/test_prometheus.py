"""Reading from a Prometheus server's HTTP API, against a real HTTP server that answers
``/api/v1/query_range`` in Prometheus's documented JSON format."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from forestream.optimizer.prometheus import (
    CADVISOR_QUERIES,
    NODE_EXPORTER_QUERIES,
    PrometheusError,
    parse_exposition,
    read_prometheus,
)
from forestream.optimizer.timeseries import MetricInputError

T0 = 1714521600


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers like Prometheus 2.x: ``series`` maps a substring of the query to
    {labels tuple: value function of t}; a query containing ``broken(`` is a bad_data error."""

    series: dict[str, dict[tuple, object]] = {}
    requests: list[dict] = []

    def do_GET(self):  # noqa: N802 (the http.server API)
        parsed = urllib.parse.urlparse(self.path)
        params = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        type(self).requests.append(params)
        if parsed.path != "/api/v1/query_range":
            return self._answer(404, {"status": "error", "errorType": "not_found",
                                      "error": "not found"})
        query = params["query"]
        if "broken(" in query:
            return self._answer(400, {"status": "error", "errorType": "bad_data",
                                      "error": 'parse error: unknown function "broken"'})
        step = int(params["step"].rstrip("s"))
        start, end = float(params["start"]), float(params["end"])
        result = []
        for needle, by_labels in self.series.items():
            if needle in query:
                for labels, value in by_labels.items():
                    values = [[t, str(value(t))] for t in np.arange(start, end + 1, step)
                              if value(t) is not None]
                    result.append({"metric": dict(labels), "values": values})
        self._answer(200, {"status": "success",
                           "data": {"resultType": "matrix", "result": result}})

    def _answer(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def prometheus():
    FakePrometheus.requests = []
    FakePrometheus.series = {
        "node_cpu_seconds_total": {
            (("instance", "web-1:9100"),): lambda t: 20 + 10 * ((t - T0) // 300 % 2),
            (("instance", "db-1:9100"),): lambda t: None if T0 + 600 <= t < T0 + 1200 else 80},
        "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes": {
            (("instance", "web-1:9100"),): lambda t: 55.5},
        "node_network_receive_bytes_total": {
            (("instance", "web-1:9100"),): lambda t: "NaN"},
    }
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_node_exporter_results_become_one_history_per_instance(prometheus):
    histories = read_prometheus(prometheus, start=T0, end=T0 + 3600)
    assert [h.resource.resource_id for h in histories] == ["db-1:9100", "web-1:9100"]
    web = histories[1]
    assert web.resource.kind == "instance" and web.resource.tags == {"instance": "web-1:9100"}
    assert web.timestamps.tolist() == list(range(T0, T0 + 3601, 300))
    assert web.metrics["cpu_pct"].tolist()[:3] == [20.0, 30.0, 20.0]
    assert np.all(web.metrics["mem_pct"] == 55.5)
    assert np.all(np.isnan(web.metrics["net_in_bytes"]))  # NaN from Prometheus stays a gap
    assert "disk_read_bytes" not in web.metrics  # no series: the metric is left out
    db = histories[0]
    assert np.isnan(db.metrics["cpu_pct"][2]) and db.metrics["cpu_pct"][4] == 80.0
    sent = FakePrometheus.requests
    assert len(sent) == len(NODE_EXPORTER_QUERIES) and {r["step"] for r in sent} == {"300s"}


def test_custom_queries_and_resource_labels(prometheus):
    FakePrometheus.series["my_gpu_util"] = {
        (("namespace", "ml"), ("pod", "trainer-0")): lambda t: 90}
    histories = read_prometheus(prometheus, start=T0, end=T0 + 600, preset="cadvisor",
                                queries={name: "absent_metric" for name in CADVISOR_QUERIES}
                                | {"gpu_pct": "avg by (namespace, pod) (my_gpu_util)"})
    [trainer] = histories
    assert trainer.resource.resource_id == "ml/trainer-0"
    assert trainer.resource.kind == "container"
    assert trainer.metrics["gpu_pct"].tolist() == [90.0, 90.0, 90.0]


def test_long_ranges_are_split_into_requests_under_the_point_limit(prometheus):
    histories = read_prometheus(prometheus, start=T0, end=T0 + 300 * 99,
                                queries={"cpu_pct": "node_cpu_seconds_total"},
                                max_points_per_request=25)
    cpu_requests = [r for r in FakePrometheus.requests if "node_cpu" in r["query"]]
    node_count = len(NODE_EXPORTER_QUERIES)
    assert len(FakePrometheus.requests) == 4 * node_count and len(cpu_requests) == 4
    web = histories[1]
    assert len(web.timestamps) == 100 and not np.isnan(web.metrics["cpu_pct"]).any()


def test_a_rejected_query_reports_prometheus_error_message(prometheus):
    with pytest.raises(PrometheusError, match=r"broken\(up\).*bad_data.*unknown function"):
        read_prometheus(prometheus, start=T0, end=T0 + 600, queries={"cpu_pct": "broken(up)"})


def test_a_result_without_the_resource_label_is_explained(prometheus):
    FakePrometheus.series["sum(unlabelled)"] = {(): lambda t: 1}
    with pytest.raises(PrometheusError, match=r"none of the labels \['instance'\]"):
        read_prometheus(prometheus, start=T0, end=T0 + 600,
                        queries={"cpu_pct": "sum(unlabelled)"})


def test_bad_arguments_name_the_accepted_values(prometheus):
    with pytest.raises(MetricInputError, match=r"preset must be one of .*'k8s'"):
        read_prometheus(prometheus, preset="k8s")
    with pytest.raises(MetricInputError, match=r"\['load'\] are not metric names"):
        read_prometheus(prometheus, queries={"load": "node_load1"})
    with pytest.raises(MetricInputError, match="start .* must be before end"):
        read_prometheus(prometheus, start=T0 + 600, end=T0)


def test_an_unreachable_server_is_a_clear_error():
    with pytest.raises(PrometheusError, match="cannot reach Prometheus at http://127.0.0.1:9"):
        read_prometheus("http://127.0.0.1:9", start=T0, end=T0 + 600, timeout=2)


def test_exposition_text_parses_labels_escapes_and_special_values():
    text = ('# HELP a_total help\n# TYPE a_total counter\n'
            'a_total{path="/x\\"y",code="200"} 12 1714521600000\n'
            'b +Inf\nc{} NaN\nd 1.5e3\n')
    samples = parse_exposition(text)
    assert samples[0].labels == {"path": '/x"y', "code": "200"} and samples[0].value == 12.0
    assert samples[1].value == float("inf") and np.isnan(samples[2].value)
    assert samples[3].value == 1500.0
    with pytest.raises(MetricInputError, match="line 1 is not Prometheus text format"):
        parse_exposition("not a sample line at all {")
