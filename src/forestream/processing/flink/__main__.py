"""``python -m forestream.processing.flink``: build the Flink environment and the connector
jar where missing (what ``make flink`` runs), and print where they are."""

from .install import main

main()
