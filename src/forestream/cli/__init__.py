"""The ``forestream`` command line: one module per command group.

``forestream server`` and ``console-url`` live in :mod:`.server`, ``rcf`` in :mod:`.rcf`,
``quickstart`` in :mod:`.quickstart`, ``flink`` (a local Flink cluster) in :mod:`.flink`,
``streams``, ``apps``, ``models`` (with its
``endpoints`` sub-group) and ``optimizer`` in modules of those names; options and helpers
they share (``--endpoint-url``, ``KEY=VALUE`` pairs, the REST call) in :mod:`.options`.
How every group lists its commands (whole summaries) and answers a mistyped one ("did
you mean ...", one level down too) is :mod:`.groups`.
Heavy libraries (numba kernels, model frameworks) are imported inside the commands that
need them, so that ``forestream --help`` answers at once.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="forestream")
def main() -> None:
    """forestream — real-time machine learning on streams, self-hosted.

    \b
    Start with:
      forestream quickstart            the main job, end to end, in about a minute
      forestream server                the server: Kinesis and SageMaker APIs, REST API, console
      forestream streams --help        create, put, get, tail, reshard streams
      forestream apps --help           run your stream processing code on the server
      forestream flink start           a local Apache Flink cluster for --runtime flink
      forestream models --help         import, approve, deploy and invoke models
      forestream optimizer --help      right-size compute from utilization history
      forestream rcf score FILE.csv    anomaly scores for a CSV file
      forestream rcf nab --data DIR    the Numenta Anomaly Benchmark score of a detector
    """




def _register_commands() -> None:
    from .apps import apps
    from .flink import flink
    from .groups import upgrade
    from .models import models
    from .optimizer import optimizer
    from .quickstart import quickstart
    from .rcf import rcf
    from .server import console_url, server
    from .streams import streams

    for command in (server, console_url, quickstart, streams, apps, flink, models, optimizer,
                    rcf):
        main.add_command(command)
    upgrade(main)  # whole summaries in listings, "did you mean" one level down


_register_commands()

if __name__ == "__main__":
    main()
