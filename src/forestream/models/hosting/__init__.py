"""Hosting: endpoints with weighted variants over pools of model workers
(:mod:`.endpoints`, :mod:`.pools`) and batch transform (:mod:`.batch`)."""
