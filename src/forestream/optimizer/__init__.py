"""forestream.optimizer — right-sizing recommendations from utilization history.

What AWS Compute Optimizer does, self-hosted: read utilization metrics (files, a
Prometheus server, a host agent, forestream's own components), compare them with an
instance catalog, and say what is over- or under-provisioned, why, what to run instead,
at what risk and for what saving.
"""

from .agent import HostAgent, sample_host
from .catalog import Catalog, CatalogError, UnknownInstanceTypeError, load_catalog
from .components import ComponentCollector, ComponentError
from .ingest import read_metrics, read_resources, write_metrics
from .prometheus import PrometheusError, read_prometheus
from .timeseries import MetricInputError
from .types import METRICS, RESOURCE_KINDS, InstanceType, Resource, UtilizationHistory

__all__ = [
    "METRICS",
    "RESOURCE_KINDS",
    "Catalog",
    "CatalogError",
    "ComponentCollector",
    "ComponentError",
    "HostAgent",
    "InstanceType",
    "MetricInputError",
    "PrometheusError",
    "Resource",
    "UnknownInstanceTypeError",
    "UtilizationHistory",
    "load_catalog",
    "read_metrics",
    "read_prometheus",
    "read_resources",
    "sample_host",
    "write_metrics",
]
