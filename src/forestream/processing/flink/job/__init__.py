"""The PyFlink side of a forestream application on Flink: the program submitted to the
cluster (:mod:`.main`), local runs (:mod:`.local`), the job builder (:mod:`.builder`)
and the functions it runs (:mod:`.functions`, :mod:`.state`).

These modules import PyFlink, which lives in the Flink virtual environment only
(``.venv-flink``, see :mod:`forestream.processing.flink.install`), never in
forestream's own: the server plans jobs with :mod:`forestream.processing.flink.translate`
and starts these in that environment.
"""
