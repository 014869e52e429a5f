"""forestream's own REST API under ``/api/v1``: applications (:mod:`.applications`),
models and endpoints (:mod:`.models`), the optimizer (:mod:`.optimizer`) and the OpenAPI
document that describes them (:mod:`.openapi`, schemas in :mod:`.schemas`). JSON in and
out; errors are RFC 9457 problem details whose title is the error code
(:mod:`.common`). Who may call is settled before, by :mod:`forestream.server.guard`.
"""
