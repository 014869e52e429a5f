"""Staging: from a source (file, directory, archive, upload, ``s3://``) to a checked model
directory in SageMaker's layout, with its manifest and validation (:mod:`.importer`).

Sources are read by :mod:`.sources` (archives by :mod:`.archives`, S3 by :mod:`.s3`)
under :class:`~forestream.models.staging.sources.ImportLimits`; nothing leaves the
staging directory and nothing half-written reaches the registry.
"""
