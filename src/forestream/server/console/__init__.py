"""The web console: HTML pages over the server's state (:mod:`.routes`), rendered by
:mod:`.pages`."""
