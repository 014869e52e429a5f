"""The SageMaker runtime route: ``POST /endpoints/{name}/invocations``.

boto3's ``sagemaker-runtime`` client calls it unchanged (rest-json protocol): the body is
the payload; ``Content-Type``, ``Accept``, ``X-Amzn-SageMaker-Custom-Attributes`` and
``X-Amzn-SageMaker-Target-Variant`` are honoured; the answer carries the model's body and
content type, ``x-Amzn-Invoked-Production-Variant`` and the custom attributes the
handler returned. Errors use SageMaker's shapes: the code in ``x-amzn-ErrorType`` and
``{"message": ...}`` in the body — ``ValidationError`` (400: unknown endpoint, bad
header, unknown variant), ``ModelError`` (424: the model raised; 415 when the handler
does not accept the content type, with ``OriginalStatusCode``), 413 beyond 6 MB.
"""

from __future__ import annotations

import re

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forestream.config import Settings
from forestream.models.errors import ModelsError, NotFoundError, UnsupportedContentType
from forestream.models.hosting.endpoints import EndpointManager
from forestream.names import cap_message

MAX_PAYLOAD = 6 * 1024 * 1024
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_HEADER_MAX = 1024


def aws_error(status: int, code: str, message: str, **fields) -> Response:
    message = cap_message(message)
    return Response(orjson.dumps({"message": message, "Message": message, **fields}),
                    status_code=status, media_type="application/json",
                    headers={"x-amzn-ErrorType": code})


def routes(endpoints: EndpointManager, settings: Settings) -> list[Route]:
    async def invocations(request: Request) -> Response:
        name = request.path_params["name"]
        if not _NAME.match(name):
            return aws_error(400, "ValidationError",
                             f"1 validation error detected: Value '{name}' at 'endpointName' "
                             "failed to satisfy constraint: Member must satisfy regular "
                             "expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*, length <= 63")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_PAYLOAD:
            return aws_error(413, "ValidationError",
                             f"HTTP content length exceeded {MAX_PAYLOAD} bytes.")
        body = await request.body()
        if len(body) > MAX_PAYLOAD:
            return aws_error(413, "ValidationError",
                             f"HTTP content length exceeded {MAX_PAYLOAD} bytes.")
        headers = request.headers
        content_type = headers.get("content-type") or "application/octet-stream"
        accept = headers.get("accept")
        if accept in ("*/*", ""):
            accept = None
        custom = headers.get("x-amzn-sagemaker-custom-attributes")
        target = headers.get("x-amzn-sagemaker-target-variant")
        for label, value in (("ContentType", content_type), ("Accept", accept),
                             ("CustomAttributes", custom)):
            if value is not None and len(value) > _HEADER_MAX:
                return aws_error(400, "ValidationError", f"{label} is {len(value)} characters;"
                                 f" at most {_HEADER_MAX} are accepted")
        try:
            result, variant = await endpoints.invoke(name, body, content_type, accept, custom,
                                                     target)
        except NotFoundError:
            return aws_error(400, "ValidationError", f"Endpoint {name} of account "
                             "000000000000 not found.")
        except UnsupportedContentType as exc:
            return aws_error(415, "ModelError", exc.message, OriginalStatusCode=415,
                             OriginalMessage=exc.message)
        except ModelsError as exc:
            if exc.status == 424:
                return aws_error(424, "ModelError",
                                 f"Received client error (424) from model with message "
                                 f"\"{exc.message}\". See the endpoint's logs "
                                 f"(forestream models endpoints logs {name}).",
                                 OriginalStatusCode=424, OriginalMessage=exc.message,
                                 LogStreamArn=f"endpoint-logs/{name}")
            if exc.status == 400:
                return aws_error(400, "ValidationError", exc.message)
            return aws_error(500 if exc.status >= 500 else exc.status,
                             "InternalFailure" if exc.status >= 500 else exc.code,
                             exc.message)
        out_headers = {"x-Amzn-Invoked-Production-Variant": variant}
        if result.custom_attributes:
            out_headers["X-Amzn-SageMaker-Custom-Attributes"] = result.custom_attributes
        return Response(result.body, media_type=result.content_type, headers=out_headers)

    return [Route("/endpoints/{name}/invocations", invocations, methods=["POST"])]
