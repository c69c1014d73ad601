"""The embedded identity service as the API's authenticator (see spyglass.context.Authenticator)."""

from __future__ import annotations

from spyglass.context import RequestContext
from spyglass.db.engine import Database
from spyglass.identity.token_cache import TokenCache


class EmbeddedAuthenticator:
    """Checks the tokens this service issued, in the database every API node shares, remembering
    the callers it validated for as long as spyglass.identity.token_cache may trust them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.cache = TokenCache(db)

    def remembered(self, token: str) -> RequestContext | None:
        return self.cache.remembered(token)

    def authenticate(self, token: str, service_token: str | None = None) -> RequestContext:
        # This service issues no service tokens: the user's token alone decides.
        return self.cache.authenticate(token)
