"""The embedded identity service as the API's authenticator (see spyglass.context.Authenticator)."""

from __future__ import annotations

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.identity.token_info import authenticate_request


class EmbeddedAuthenticator:
    """Checks the tokens this service issued, in the database every API node shares."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def authenticate(self, token: str, service_token: str | None = None) -> RequestContext:
        # This service issues no service tokens: the user's token alone decides.
        return authenticate_request(self.db, token)
