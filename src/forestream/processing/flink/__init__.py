"""Running forestream applications on Apache Flink: the pieces under the translation.

* :mod:`.install`: where the Flink virtual environment, Flink's home and the connector
  jar (forestream's Kinesis-API source and sink, ``java/flink-connector``) are; builds
  them on demand (``flink_python()``, ``flink_home()``, ``connector_jar()``).
* :mod:`.cluster`: :class:`~.cluster.LocalFlinkCluster`, a standalone cluster of real
  JobManager and TaskManager processes under the data directory
  (``forestream flink start``).
* :mod:`.rest_api`: :class:`~.rest_api.FlinkRest`, Flink's REST API (status, metrics,
  savepoints, cancel) and PyFlink submission with ``flink run --python``.

Nothing here imports PyFlink: it runs in its own virtual environment (see
:mod:`.install`), and this package only starts processes and speaks HTTP.
"""

from .cluster import FlinkClusterError, LocalFlinkCluster
from .install import FlinkSetupError, connector_jar, flink_home, flink_python
from .rest_api import FlinkRest, FlinkRestError, FlinkSubmitError

__all__ = ["FlinkClusterError", "FlinkRest", "FlinkRestError", "FlinkSetupError",
           "FlinkSubmitError", "LocalFlinkCluster", "connector_jar", "flink_home",
           "flink_python"]
