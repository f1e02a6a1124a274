"""Headers every answer carries: none is sniffed into another media type, and none holding FHIR or IPT data
is kept by a browser or a shared cache (errors included: an OperationOutcome may name a resource)."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
_DATA_PATHS = ("/fhir", "/ipt")


class ProtectiveHeaders:
    """ASGI middleware, outermost, so that the answers of the CORS middleware get them too.

    Plain ASGI rather than Starlette's `BaseHTTPMiddleware`: it only appends to the header list.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holds_data = scope["path"].startswith(_DATA_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if not (holds_data and name.lower() == b"cache-control")
                ]
                headers.append(_NOSNIFF)
                if holds_data:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
