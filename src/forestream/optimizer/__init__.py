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

# The recommender, reports and the server-side service load numba (through
# forestream.rcf) and are imported on first use, so that importing the inputs stays light.
_LAZY = {
    "recommend": "recommend", "recommend_many": "recommend", "Recommendation": "recommend",
    "Option": "recommend", "Preferences": "recommend", "InsufficientDataError": "recommend",
    "InvalidParameterError": "recommend", "RecommendationError": "recommend",
    "build_analysis": "report", "render_html": "report", "recommendation_table": "report",
    "OptimizerService": "service",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'forestream.optimizer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


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
    *sorted(_LAZY),
]
