"""Reading metric files in the documented input shape."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from forestream.optimizer.ingest import (
    MetricInputError,
    read_metrics,
    read_resources,
    write_metrics,
)
from forestream.optimizer.timeseries import parse_timestamps, resample
from forestream.optimizer.types import Resource, UtilizationHistory

NAB = Path(__file__).resolve().parents[2].parent / "shared/datasets/nab/data/realAWSCloudwatch"
T0 = 1714521600  # 2024-05-01T00:00:00Z


def test_resampling_keeps_mean_and_max_per_five_minute_bucket_and_gaps_stay_nan():
    seconds = T0 + np.array([0, 60, 240, 300, 1200])
    grid, metrics = resample(seconds, {"cpu_pct": np.array([10, 50, 30, 5, 7.0])})
    assert grid.tolist() == [T0 + 300 * i for i in range(5)]
    np.testing.assert_allclose(metrics["cpu_pct"], [30, 5, np.nan, np.nan, 7])
    np.testing.assert_allclose(metrics["cpu_pct_max"], [50, 5, np.nan, np.nan, 7])


def test_a_max_column_feeds_the_bucket_maximum():
    grid, metrics = resample(T0 + np.array([0, 60]),
                             {"cpu_pct": np.array([10.0, 20.0]),
                              "cpu_pct_max": np.array([90.0, np.nan])})
    assert metrics["cpu_pct"].tolist() == [15.0] and metrics["cpu_pct_max"].tolist() == [90.0]


def test_timestamps_accept_iso_and_epoch_seconds_and_milliseconds():
    expected = [T0, T0 + 300]
    assert parse_timestamps(["2024-05-01T00:00:00Z", "2024-05-01 00:05:00"]).tolist() == expected
    assert parse_timestamps(["2024-05-01T02:00:00+02:00", "2024-05-01T00:05:00"]).tolist() \
        == expected
    assert parse_timestamps([T0, T0 + 300]).tolist() == expected
    assert parse_timestamps([T0 * 1000, (T0 + 300) * 1000]).tolist() == expected
    assert parse_timestamps([str(T0), str(T0 + 300)]).tolist() == expected
    with pytest.raises(MetricInputError, match="'yesterday'.*ISO 8601"):
        parse_timestamps(["yesterday"])


def test_wide_csv_with_several_metrics(tmp_path):
    path = tmp_path / "db-1.csv"
    path.write_text("timestamp,cpu_pct,mem_pct,net_in_bytes,disk_read_ops\n"
                    f"{T0},10,50,1000,5\n{T0 + 60},20,,3000,7\n{T0 + 600},40,60,,\n")
    [history] = read_metrics(path)
    assert history.resource == Resource("db-1", kind="instance")
    assert history.timestamps.tolist() == [T0, T0 + 300, T0 + 600]
    assert history.metrics["cpu_pct"].tolist()[0] == 15.0
    assert history.metrics["mem_pct"][0] == 50.0  # the empty cell is a missing sample
    assert np.isnan(history.metrics["net_in_bytes"][2])
    assert set(history.metrics) == {f"{m}{s}" for m in ("cpu_pct", "mem_pct", "net_in_bytes",
                                                         "disk_read_ops") for s in ("", "_max")}


def test_unknown_columns_are_an_error_listing_accepted_names(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("timestamp,cpu,load\n1,2,3\n")
    with pytest.raises(MetricInputError, match=r"unknown columns \['cpu', 'load'\].*cpu_pct"):
        read_metrics(path)
    [history] = read_metrics(path, rename={"cpu": "cpu_pct", "load": "CPUUtilization"})
    assert history.metrics["cpu_pct_max"].tolist() == [3.0]


@pytest.mark.parametrize(("content", "message"), [
    ("timestamp,cpu_pct\n1,150\n", r"cpu_pct value 150.0 .*accepted: 0 to 100"),
    ("timestamp,net_in_bytes\n1,-5\n", r"net_in_bytes value -5.0 .*accepted: >= 0"),
    ("timestamp,cpu_pct\n1,busy\n", r"column 'cpu_pct' row 1: 'busy' is not a number"),
    ("when,cpu_pct\n1,5\n", r"no timestamp column.*'timestamp'"),
    ("timestamp,cpu_pct\n1,5,6\n", r"line 2: 3 fields, the header has 2"),
])
def test_bad_values_name_the_value_and_the_accepted_range(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(MetricInputError, match=message):
        read_metrics(path)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(MetricInputError, match="does not exist"):
        read_metrics(tmp_path / "missing.csv")
    with pytest.raises(MetricInputError, match=r"kind must be one of .*'vm'"):
        read_metrics(tmp_path, kind="vm")
    with pytest.raises(MetricInputError, match=r"metric 'cpu' is not a known metric"):
        read_metrics(tmp_path, metric="cpu")
    with pytest.raises(MetricInputError, match="has no metrics files"):
        read_metrics(tmp_path)


@pytest.mark.skipif(not NAB.exists(), reason="NAB dataset not present")
def test_nab_cloudwatch_csv_names_the_metric_from_the_filename():
    [cpu] = read_metrics(NAB / "ec2_cpu_utilization_5f5533.csv")
    assert cpu.resource.resource_id == "ec2_cpu_utilization_5f5533"
    assert set(cpu.metrics) == {"cpu_pct", "cpu_pct_max"}
    assert np.all(np.diff(cpu.timestamps) == 300) and 13 < cpu.hours / 24 < 15
    assert 30 < np.nanmean(cpu.metrics["cpu_pct"]) < 70
    [net] = read_metrics(NAB / "iio_us-east-1_i-a2eb1cd9_NetworkIn.csv")
    # CloudWatch NetworkIn is bytes per 5-minute period: per second it is 300x smaller
    raw = np.loadtxt(NAB / "iio_us-east-1_i-a2eb1cd9_NetworkIn.csv", delimiter=",",
                     skiprows=1, usecols=1)
    assert np.nanmax(net.metrics["net_in_bytes_max"]) == pytest.approx(raw.max() / 300)
    with pytest.raises(MetricInputError, match="pass metric="):
        read_metrics(NAB / "elb_request_count_8c0756.csv")
    [named] = read_metrics(NAB / "grok_asg_anomaly.csv", metric="cpu_pct", resource_id="asg-1")
    assert named.resource.resource_id == "asg-1" and "cpu_pct" in named.metrics


def test_timestamp_value_file_with_canonical_metric_is_taken_per_second(tmp_path):
    path = tmp_path / "web_network_in.csv"
    path.write_text(f"timestamp,value\n{T0},3000\n{T0 + 300},6000\n")
    [as_cloudwatch] = read_metrics(path)
    [per_second] = read_metrics(path, metric="net_in_bytes")
    assert as_cloudwatch.metrics["net_in_bytes"].tolist() == [10.0, 20.0]
    assert per_second.metrics["net_in_bytes"].tolist() == [3000.0, 6000.0]


def test_directory_with_resources_file_describes_each_resource(tmp_path):
    (tmp_path / "web-1.csv").write_text(f"timestamp,cpu_pct\n{T0},10\n{T0 + 300},20\n")
    (tmp_path / "fn-1.json").write_text(json.dumps(
        [{"timestamp": f"2024-05-01T00:0{i}:00Z", "invocations": i, "duration_ms": 120 + i}
         for i in range(3)]))
    (tmp_path / "ignored.txt").write_text("not metrics")
    (tmp_path / "resources.csv").write_text(
        "resource_id,kind,instance_type,memory_mb,tag:team\n"
        "web-1,instance,m5.xlarge,,web\nfn-1,function,,1024,\nidle-1,asg,m5.large,,\n")
    histories = {h.resource.resource_id: h for h in read_metrics(tmp_path)}
    assert set(histories) == {"web-1", "fn-1", "idle-1"}
    assert histories["web-1"].resource == Resource("web-1", "instance",
                                                   {"instance_type": "m5.xlarge"},
                                                   {"team": "web"})
    assert histories["fn-1"].resource.current == {"memory_mb": 1024}
    assert histories["fn-1"].metrics["duration_ms"].tolist() == [121.0]
    assert len(histories["idle-1"].timestamps) == 0  # listed, never measured


def test_resources_json_and_bad_resources(tmp_path):
    good = tmp_path / "resources.json"
    good.write_text(json.dumps([{"resource_id": "s", "kind": "stream",
                                 "current": {"shards": 4}, "tags": {"env": "prod"}}]))
    assert read_resources(good)["s"] == Resource("s", "stream", {"shards": 4}, {"env": "prod"})
    bad = tmp_path / "bad.csv"
    for content, message in [("resource_id,kind\nx,vm\n", r"kind must be one of .*'vm'"),
                             ("resource_id,colour\nx,red\n", r"unknown fields \['colour'\]"),
                             ("resource_id,shards\nx,1.5\n", "shards must be a whole number"),
                             ("resource_id\nx\nx\n", "listed twice")]:
        bad.write_text(content)
        with pytest.raises(MetricInputError, match=message):
            read_resources(bad)


def test_one_file_with_a_resource_id_column_holds_several_resources(tmp_path):
    path = tmp_path / "fleet.csv.gz"
    path.write_bytes(gzip.compress(
        f"timestamp,resource_id,cpu_pct\n{T0},a,10\n{T0},b,70\n{T0 + 300},a,30\n".encode()))
    histories = read_metrics(path)
    assert [h.resource.resource_id for h in histories] == ["a", "b"]
    assert histories[0].metrics["cpu_pct"].tolist() == [10.0, 30.0]


def test_cloudwatch_get_metric_data_output(tmp_path):
    output = {"MetricDataResults": [
        {"Id": "cpu", "Label": "CPUUtilization", "StatusCode": "Complete",
         "Timestamps": ["2024-05-01T00:10:00+00:00", "2024-05-01T00:05:00+00:00",
                        "2024-05-01T00:00:00+00:00"], "Values": [30.0, 20.0, 10.0]},
        {"Id": "net", "Label": "NetworkOut", "StatusCode": "Complete",
         "Timestamps": ["2024-05-01T00:05:00+00:00", "2024-05-01T00:00:00+00:00"],
         "Values": [600.0, 300.0]},
        {"Id": "other", "Label": "i-0abc CPUUtilization", "StatusCode": "Complete",
         "Timestamps": ["2024-05-01T00:00:00+00:00"], "Values": [99.0]}],
        "Messages": []}
    path = tmp_path / "i-0123.json"
    path.write_text(json.dumps(output))
    histories = {h.resource.resource_id: h for h in read_metrics(path)}
    main = histories["i-0123"]
    assert main.metrics["cpu_pct"].tolist() == [10.0, 20.0, 30.0]
    assert main.metrics["net_out_bytes"].tolist()[:2] == [1.0, 2.0]  # Sum per 300 s
    assert histories["i-0abc"].metrics["cpu_pct"].tolist() == [99.0]


def test_cloudwatch_get_metric_statistics_output(tmp_path):
    output = {"Label": "CPUUtilization", "Datapoints": [
        {"Timestamp": "2024-05-01T00:05:00Z", "Average": 20.0, "Maximum": 80.0, "Unit": "Percent"},
        {"Timestamp": "2024-05-01T00:00:00Z", "Average": 10.0, "Maximum": 15.0, "Unit": "Percent"}]}
    path = tmp_path / "web.json"
    path.write_text(json.dumps(output))
    [history] = read_metrics(path)
    assert history.metrics["cpu_pct"].tolist() == [10.0, 20.0]
    assert history.metrics["cpu_pct_max"].tolist() == [15.0, 80.0]


def test_parquet_and_jsonl_files(tmp_path):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as parquet

    stamps = np.array([T0, T0 + 300], dtype="datetime64[s]")
    table = pyarrow.table({"timestamp": stamps, "gpu_pct": [40.0, 60.0],
                           "gpu_mem_pct": [10.0, None]})
    parquet.write_table(table, tmp_path / "gpu-box.parquet")
    (tmp_path / "cpu-box.jsonl").write_text(
        "\n".join(json.dumps({"ts": (T0 + i * 300) * 1000, "cpu_pct": i}) for i in range(3)))
    histories = {h.resource.resource_id: h for h in read_metrics(tmp_path)}
    assert histories["gpu-box"].metrics["gpu_pct"].tolist() == [40.0, 60.0]
    assert np.isnan(histories["gpu-box"].metrics["gpu_mem_pct"][1])
    assert histories["cpu-box"].timestamps.tolist() == [T0, T0 + 300, T0 + 600]


def test_written_histories_read_back_unchanged(tmp_path):
    resource = Resource("stream/orders", "stream", {"shards": 2}, {"env": "test"})
    original = UtilizationHistory(resource, np.array([T0, T0 + 300, T0 + 600]),
                                  {"records_in": np.array([1.5, np.nan, 3.0]),
                                   "records_in_max": np.array([2.0, np.nan, 4.0])})
    write_metrics([original], tmp_path)
    [again] = read_metrics(tmp_path)
    assert again.resource == resource
    assert again.timestamps.tolist() == original.timestamps.tolist()
    np.testing.assert_array_equal(again.metrics["records_in"], original.metrics["records_in"])
    np.testing.assert_array_equal(again.metrics["records_in_max"],
                                  original.metrics["records_in_max"])
