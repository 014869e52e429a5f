"""The web console: pages an operator works in (:mod:`.routes`), drawn from the server's
own objects (:mod:`.reader`), with live parts refreshed by htmx, charts drawn by uPlot
over a few minutes of counters (:mod:`.history`), and actions that call the same methods
as the API (:mod:`.actions`). Front-end assets: :mod:`.assets`."""
