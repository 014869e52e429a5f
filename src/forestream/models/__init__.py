"""forestream.models — import, register and serve externally trained models.

What SageMaker's model import, Model Registry and endpoints do, self-hosted:

* :class:`ModelRegistry` imports a model file, directory, SageMaker ``model.tar.gz``,
  MLflow model directory or ``s3://`` object as a numbered version of a model group,
  after validating it by loading it in a worker process, and keeps approval status,
  metadata, metrics and lineage;
* :class:`ModelWorker` is the subprocess that loads one model version and answers
  requests (SageMaker's handler contract, default handlers per framework);
* :class:`EndpointManager` serves versions as endpoints with weighted variants;
* :func:`~forestream.models.hosting.batch.transform` scores files or streams in batches.

Frameworks: scikit-learn, XGBoost, LightGBM, ONNX, PyTorch, TensorFlow/Keras,
forestream's Random Cut Forest (MXNet cannot be installed here and is refused clearly).
"""

from .errors import (
    ConflictError,
    FrameworkUnavailable,
    ImportFailed,
    ImportRefused,
    InvalidInput,
    ModelInvocationError,
    ModelLoadError,
    ModelsError,
    ModelValidationError,
    NotFoundError,
    UnsupportedContentType,
    WorkerCrashed,
)
from .hosting.batch import endpoint_invoker, transform
from .hosting.endpoints import EndpointManager
from .registry import ModelRegistry
from .serving.worker import Invocation, ModelWorker, validate_artifact

__all__ = [
    "ConflictError",
    "EndpointManager",
    "FrameworkUnavailable",
    "ImportFailed",
    "ImportRefused",
    "InvalidInput",
    "Invocation",
    "ModelInvocationError",
    "ModelLoadError",
    "ModelRegistry",
    "ModelValidationError",
    "ModelWorker",
    "ModelsError",
    "NotFoundError",
    "UnsupportedContentType",
    "WorkerCrashed",
    "endpoint_invoker",
    "transform",
    "validate_artifact",
]
