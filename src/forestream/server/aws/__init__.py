"""The AWS wire protocols: Kinesis and the SageMaker control plane (JSON 1.1 and CBOR on
``POST /``), SageMaker runtime invocations, and Signature V4 (:mod:`.sigv4`)."""
