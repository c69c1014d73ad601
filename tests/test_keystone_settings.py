"""The `identity` setting and the `[keystone_authtoken]` table (spyglass.keystone_settings)."""

from pathlib import Path

import pytest

from spyglass.settings import SettingsError, load_settings

TABLE = """
identity = "keystone"
[keystone_authtoken]
auth_url = "http://127.0.0.1:5000/v3"
username = "glance"
password = "secret"
project_name = "service"
service_token_roles = ["service", "nova"]
"""


def test_the_table_beside_the_settings_with_environment_over_it(tmp_path: Path) -> None:
    config = tmp_path / "spyglass.toml"
    config.write_text(TABLE)
    settings = load_settings(
        config,
        environ={
            "SPYGLASS_KEYSTONE_AUTHTOKEN_TOKEN_CACHE_TIME": "5",
            "SPYGLASS_KEYSTONE_AUTHTOKEN_PASSWORD": "from-env",
        },
    )
    options = settings.keystone_authtoken
    assert settings.identity == "keystone"
    assert (options.username, options.password, options.token_cache_time) == ("glance", "from-env", 5)
    assert options.service_token_roles == ("service", "nova")
    assert options.service_token_roles_required is True
    # www_authenticate_uri defaults to auth_url, as in keystonemiddleware.
    assert options.authenticate_uri == "http://127.0.0.1:5000/v3"


def test_the_table_under_a_spyglass_section(tmp_path: Path) -> None:
    config = tmp_path / "spyglass.toml"
    config.write_text('[spyglass]\nidentity = "keystone"\n' + TABLE.split("\n", 2)[2])
    assert load_settings(config, environ={}).keystone_authtoken.project_name == "service"


def test_embedded_is_the_default() -> None:
    assert load_settings(environ={}).identity == "embedded"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SPYGLASS_IDENTITY": "ldap"}, "identity must be"),
        ({"SPYGLASS_IDENTITY": "keystone"}, "needs [keystone_authtoken] auth_url, username, password"),
        ({"SPYGLASS_KEYSTONE_AUTHTOKEN_TOKEN_CACHE_TIME": "soon"}, "token_cache_time has an invalid value"),
    ],
)
def test_bad_values_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        load_settings(environ=environ)


def test_unknown_options_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "spyglass.toml"
    config.write_text(TABLE + 'memcached_servers = "127.0.0.1:11211"\n')
    with pytest.raises(SettingsError, match="unknown option 'memcached_servers'"):
        load_settings(config, environ={})


def test_keystone_notifications_are_read_with_identity_keystone_only(tmp_path: Path) -> None:
    config = tmp_path / "spyglass.toml"
    config.write_text('notifications_transport_url = "rabbit://guest:guest@127.0.0.1:5672/"\n' + TABLE)
    # Keystone's messages come from the bus Glance's notifications go to, unless told otherwise.
    settings = load_settings(config, environ={})
    assert settings.keystone_listener_url == "rabbit://guest:guest@127.0.0.1:5672/"
    assert (settings.keystone_notifications_exchange, settings.keystone_notifications_topic) == (
        "keystone",
        "notifications",
    )
    assert settings.keystone_notifications_pool == "spyglass"
    apart = {"SPYGLASS_KEYSTONE_NOTIFICATIONS_TRANSPORT_URL": "rabbit://guest:guest@10.0.0.2:5672/keystone"}
    assert load_settings(config, environ=apart).keystone_listener_url.endswith("/keystone")
    embedded = {"SPYGLASS_NOTIFICATIONS_TRANSPORT_URL": "rabbit://guest:guest@127.0.0.1:5672/"}
    assert load_settings(environ=embedded).keystone_listener_url == ""


@pytest.mark.parametrize(
    "name", ["KEYSTONE_NOTIFICATIONS_POOL", "KEYSTONE_NOTIFICATIONS_TOPIC", "KEYSTONE_NOTIFICATIONS_EXCHANGE"]
)
def test_keystone_notifications_need_a_pool_topic_and_exchange(tmp_path: Path, name: str) -> None:
    config = tmp_path / "spyglass.toml"
    config.write_text(TABLE)
    with pytest.raises(SettingsError, match=f"{name.lower()} must not be empty"):
        load_settings(config, environ={f"SPYGLASS_{name}": " "})
