"""The instance catalog: the shipped file, lookups, filters, user files, the build script."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from forestream.optimizer.catalog import (
    Catalog,
    CatalogError,
    UnknownInstanceTypeError,
    available_regions,
    load_catalog,
    shipped_catalog_path,
)
from forestream.optimizer.types import InstanceType

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_catalog_is_dated_and_covers_the_major_regions():
    path = shipped_catalog_path()
    assert path.name.startswith("ec2-catalog-20") and path.name.endswith(".csv.gz")
    regions = available_regions()
    for region in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1",
                   "ap-northeast-1", "ap-southeast-2", "sa-east-1"):
        assert region in regions
    assert len(load_catalog()) > 700  # us-east-1 is the default


def test_lookup_returns_the_published_shape_of_well_known_types():
    catalog = load_catalog("us-east-1")
    m5 = catalog["m5.xlarge"]
    assert (m5.family, m5.architecture, m5.vcpu, m5.memory_gib) == ("m5", "x86_64", 4, 16.0)
    assert m5.burstable is False and m5.cpu_speed == 1.0
    assert 0.15 < m5.price_per_hour < 0.25
    g5 = catalog["g5.12xlarge"]
    assert (g5.gpus, g5.gpu_memory_gib) == (4, 96.0)
    assert catalog["m7g.large"].architecture == "arm64"
    assert catalog["t3.micro"].burstable
    assert catalog.get("  M5.XLARGE ") is m5


def test_prices_scale_with_size_within_a_family():
    catalog = load_catalog("us-east-1")
    sizes = catalog.sizes("m5")
    per_vcpu = [t.price_per_hour / t.vcpu for t in sizes]
    assert max(per_vcpu) / min(per_vcpu) < 1.1
    assert [t.vcpu for t in sizes] == sorted(t.vcpu for t in sizes)


def test_estimated_prices_are_flagged_and_close_to_the_family_rate():
    catalog = load_catalog("us-east-1")
    estimated = [t for t in catalog if t.price_estimated]
    assert estimated, "the source lacks some prices; they must be filled and flagged"
    for t in estimated:
        assert t.price_per_hour > 0
    # m5.xlarge has no us-east-1 price in the source: twice m5.large's is what AWS charges
    assert catalog["m5.xlarge"].price_estimated
    assert catalog["m5.xlarge"].price_per_hour == pytest.approx(
        2 * catalog["m5.large"].price_per_hour, rel=0.01)


def test_cpu_speed_follows_processor_generation():
    catalog = load_catalog("us-east-1")
    assert catalog["m6g.large"].cpu_speed < catalog["m7g.large"].cpu_speed \
        < catalog["m8g.large"].cpu_speed
    assert catalog["m5.large"].cpu_speed < catalog["m6i.large"].cpu_speed \
        < catalog["m7i.large"].cpu_speed
    assert catalog["m5a.large"].cpu_speed < catalog["m6a.large"].cpu_speed \
        < catalog["m7a.large"].cpu_speed


def test_network_baseline_never_exceeds_the_burst_ceiling():
    catalog = load_catalog("us-east-1")
    for t in catalog:
        assert 0 <= t.network_gbps <= t.network_burst_gbps
    assert catalog["m5.24xlarge"].network_gbps == 25.0  # a fixed figure is its own baseline
    assert catalog["t3.nano"].network_gbps < catalog["t3.2xlarge"].network_gbps


def test_unknown_type_names_the_value_and_suggests_close_matches():
    catalog = load_catalog()
    with pytest.raises(UnknownInstanceTypeError, match=r"'m5.xlarg'.*did you mean 'm5.xlarge'"):
        catalog["m5.xlarg"]
    with pytest.raises(UnknownInstanceTypeError, match="'zz9.huge'"):
        catalog.get("zz9.huge")
    assert "m5.xlarge" in catalog and "zz9.huge" not in catalog


def test_unknown_region_lists_the_regions_it_has():
    with pytest.raises(CatalogError, match=r"'us-east-7'.*us-east-1.*did you mean"):
        load_catalog("us-east-7")


def test_filter_combines_architecture_families_and_minimums():
    catalog = load_catalog()
    arm = catalog.filter(architecture="arm64", min_vcpu=8, min_memory_gib=32)
    assert arm and all(t.architecture == "arm64" and t.vcpu >= 8 and t.memory_gib >= 32
                       for t in arm)
    prices = [t.price_per_hour for t in arm]
    assert prices == sorted(prices)
    m = catalog.filter(families=["m5", "m6i"], max_price_per_hour=0.2)
    assert {t.family for t in m} == {"m5", "m6i"} and all(t.price_per_hour <= 0.2 for t in m)
    gpu = catalog.filter(min_gpus=4)
    assert gpu and all(t.gpus >= 4 for t in gpu)
    assert all(t.gpus == 0 for t in catalog.filter(gpus=False))
    assert all(not t.burstable for t in catalog.filter(burstable=False))


def test_filter_rejects_bad_arguments_with_the_accepted_range():
    catalog = load_catalog()
    with pytest.raises(CatalogError, match=r"architecture must be one of .*'arm'"):
        catalog.filter(architecture="arm")
    with pytest.raises(CatalogError, match=r"unknown instance families \['m55'\]"):
        catalog.filter(families=["m55"])
    with pytest.raises(CatalogError, match="min_vcpu must be >= 0, got -1"):
        catalog.filter(min_vcpu=-1)


def test_graviton_equivalent_keeps_series_size_and_local_disk():
    catalog = load_catalog()
    assert catalog.graviton_equivalent("m5.xlarge").name in ("m7g.xlarge", "m8g.xlarge")
    assert catalog.graviton_equivalent("c5d.2xlarge").family.endswith("gd")
    assert catalog.graviton_equivalent("t3.small").name == "t4g.small"
    assert catalog.graviton_equivalent("p3.2xlarge") is None  # no arm64 P series
    assert catalog.graviton_equivalent("m7g.large").name == "m7g.large"
    assert catalog.is_graviton("c7g.large") and not catalog.is_graviton("c5.large")


def test_user_csv_in_the_same_shape_loads_with_defaults(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("name,vcpu,memory_gib,price_per_hour,architecture\n"
                    "small.one,2,4,0.05,x86_64\nbig.one,8,32,0.2,arm64\n")
    catalog = load_catalog("anywhere-1", path=path)
    assert [t.name for t in catalog] == ["small.one", "big.one"]
    big = catalog["big.one"]
    assert (big.family, big.architecture, big.cpu_speed, big.gpus) == ("big", "arm64", 1.0, 0)


def test_user_json_with_regions_selects_the_asked_region(tmp_path):
    rows = [{"region": "r-1", "name": "a.large", "vcpu": 2, "memory_gib": 8,
             "price_per_hour": 0.1, "burstable": True},
            {"region": "r-2", "name": "a.large", "vcpu": 2, "memory_gib": 8,
             "price_per_hour": 0.3}]
    path = tmp_path / "mine.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"instance_types": rows}).encode()))
    assert load_catalog("r-2", path=path)["a.large"].price_per_hour == 0.3
    assert load_catalog("r-1", path=path)["a.large"].burstable is True
    with pytest.raises(CatalogError, match="'r-3'"):
        load_catalog("r-3", path=path)


@pytest.mark.parametrize(("content", "message"), [
    ("name,vcpu,memory_gib,price_per_hour,colour\nx.a,1,1,1,red\n",
     r"unknown columns \['colour'\].*accepted columns"),
    ("name,vcpu,memory_gib\nx.a,1,1\n", r"missing required columns \['price_per_hour'\]"),
    ("name,vcpu,memory_gib,price_per_hour\nx.a,two,1,1\n",
     r"row 2: vcpu must be a number, got 'two'"),
    ("name,vcpu,memory_gib,price_per_hour\nx.a,1,1,-3\n", r"price_per_hour must be >= 0, got '-3'"),
    ("name,vcpu,memory_gib,price_per_hour,architecture\nx.a,1,1,1,sparc\n",
     r"architecture must be one of .*'sparc'"),
    ("name,vcpu,memory_gib,price_per_hour\nx.a,1,1,1\nx.a,2,2,2\n", "'x.a' appears twice"),
])
def test_malformed_user_catalog_names_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path=path)


def test_missing_user_file_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(path=tmp_path / "nope.csv")


def test_catalog_can_be_built_from_instance_types_directly():
    catalog = Catalog([InstanceType("b.x", "b", "x86_64", 2, 4.0, 0.2),
                       InstanceType("a.x", "a", "x86_64", 2, 4.0, 0.1)], region="lab")
    assert [t.name for t in catalog] == ["a.x", "b.x"] and catalog.families() == ["a", "b"]


def test_build_script_is_deterministic_from_a_libcloud_tree(tmp_path):
    """A miniature libcloud tree in the real files' shape gives the same bytes twice,
    fills the missing price from the family rate and flags it."""
    tree = tmp_path / "libcloud-tree"
    constants = tree / "libcloud/compute/constants"
    constants.mkdir(parents=True)
    (tree / "libcloud/data").mkdir(parents=True)

    def spec(name, vcpu, memory, units, network="Up to 10 Gigabit", processor="Intel Xeon "
             "Platinum 8175"):
        return {"bandwidth": 10, "disk": 0, "id": name, "name": name, "ram": memory * 1024,
                "extra": {"vcpu": str(vcpu), "memory": f"{memory} GiB",
                          "normalizationSizeFactor": str(units), "networkPerformance": network,
                          "physicalProcessor": processor, "instanceFamily": "General purpose",
                          "gpuMemory": "NA", "currentGeneration": "Yes"}}

    types = {"m5.large": spec("m5.large", 2, 8, 4), "m5.xlarge": spec("m5.xlarge", 4, 16, 8),
             "m5.12xlarge": spec("m5.12xlarge", 48, 192, 96, "10 Gigabit"),
             "m7g.large": spec("m7g.large", 2, 8, 4, processor="AWS Graviton3 Processor")}
    (constants / "ec2_instance_types.py").write_text(f"INSTANCE_TYPES = {types!r}\n")
    pricing = {"updated": 1700000000, "compute": {"ec2_linux": {
        "m5.large": {"us-east-1": 0.096}, "m5.xlarge": {"us-east-1": 0.0},
        "m5.12xlarge": {"us-east-1": 2.304}, "m7g.large": {"us-east-1": 0.0816}}}}
    (tree / "libcloud/data/pricing.json").write_text(json.dumps(pricing))
    outputs = []
    for run in ("a", "b"):
        out = tmp_path / run
        subprocess.run([sys.executable, str(ROOT / "scripts/build_catalog.py"),
                        "--libcloud-dir", str(tree), "--output-dir", str(out)],
                       check=True, capture_output=True)
        outputs.append((out / "ec2-catalog-2023-11-14.csv.gz").read_bytes())
    assert outputs[0] == outputs[1]
    catalog = load_catalog(path=tmp_path / "a" / "ec2-catalog-2023-11-14.csv.gz")
    assert catalog["m5.xlarge"].price_estimated
    assert catalog["m5.xlarge"].price_per_hour == pytest.approx(0.192)
    assert catalog["m5.large"].network_gbps == pytest.approx(10 / 48 * 2, abs=1e-3)
    assert catalog["m7g.large"].architecture == "arm64" and catalog["m7g.large"].cpu_speed > 1
