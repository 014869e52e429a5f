"""Serving a model in a worker process: :class:`~.worker.ModelWorker` (the parent's side),
:mod:`.child` (the worker itself), the framing both speak (:mod:`.wire`), and inside the
worker SageMaker's handler contract (:mod:`.handlers`) with default predictors per
framework (:mod:`.predictors`, :mod:`.tensor_predictors`) and content types
(:mod:`.codecs`).
"""
