import os
from pathlib import Path

import pytest

from spyglass.settings import SettingsError, load_settings


def test_layers_apply_in_order(tmp_path: Path) -> None:
    config = tmp_path / "spyglass.toml"
    config.write_text('[spyglass]\nport = 9000\nregion = "Toml"\nimage_member_quota = 5\n')
    settings = load_settings(
        config,
        environ={"SPYGLASS_REGION": "Env", "SPYGLASS_DEMO": "yes"},
        overrides={"port": 9100, "host": None},
    )
    assert settings.port == 9100  # flag beats file
    assert settings.region == "Env"  # environment beats file
    assert settings.image_member_quota == 5  # file beats default
    assert settings.demo is True
    assert settings.host == "127.0.0.1"  # a flag left unset changes nothing


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("data_dir = '/srv/spyglass'\n")
    settings = load_settings(environ={"SPYGLASS_CONFIG": str(config)})
    assert settings.data_dir == Path("/srv/spyglass")
    assert settings.database == "sqlite:////srv/spyglass/spyglass.db"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SPYGLASS_PORT": "http"}, "invalid value"),
        ({"SPYGLASS_PORT": "70000"}, "port must be"),
        ({"SPYGLASS_DEMO": "maybe"}, "invalid value"),
        ({"SPYGLASS_HASHING_ALGORITHM": "md5"}, "hashing_algorithm"),
        ({"SPYGLASS_LIMIT_PARAM_DEFAULT": "5000"}, "limit_param_default"),
        ({"SPYGLASS_LOGIN_FAILURE_WINDOW_SECONDS": "0"}, "login_failure_window_seconds must be at least 1"),
        ({"SPYGLASS_LOGIN_FAILURES_PER_ADDRESS": "-1"}, "login_failures_per_address must not be negative"),
        ({"SPYGLASS_PASSWORD_CHECK_QUEUE": "-1"}, "password_check_queue must not be negative"),
        ({"SPYGLASS_IMAGE_CACHE_MAX_SIZE": "0"}, "image_cache_max_size must be at least 1"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=environ)


def test_unknown_or_unreadable_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("colour = 'blue'\n")
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        load_settings(config, environ={})
    config.write_text("port = \n")
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(config, environ={})


def test_worker_processes_get_the_data_path_settings() -> None:
    from spyglass.cli import _as_environment

    chosen = {
        "disk_format_inspection": False,
        "web_download_allowed_networks": ("127.0.0.1/32", "10.0.0.0/8"),
        "web_download_timeout_seconds": 60,
        "login_failures_per_user_address": 3,
        "password_check_concurrency": 2,
        "workers": 4,
        "image_cache": True,
        "image_cache_dir": "/var/cache/spyglass",
        "image_cache_max_size": 123456,
    }
    settings = load_settings(environ={}, overrides=dict(chosen))
    assert {k: getattr(settings, k) for k in chosen} == chosen
    again = load_settings(environ=_as_environment(settings))
    assert {k: getattr(again, k) for k in chosen} == chosen


def test_allowed_networks_from_toml_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('web_download_allowed_networks = ["192.168.0.0/16", "::1"]\n')
    assert load_settings(config, environ={}).web_download_allowed_networks == ("192.168.0.0/16", "::1")
    environ = {"SPYGLASS_WEB_DOWNLOAD_ALLOWED_NETWORKS": " 10.0.0.0/8, ,fd00::/8 "}
    assert load_settings(environ=environ).web_download_allowed_networks == ("10.0.0.0/8", "fd00::/8")
    with pytest.raises(SettingsError, match="is not a network"):
        load_settings(environ={"SPYGLASS_WEB_DOWNLOAD_ALLOWED_NETWORKS": "example.com"})
    with pytest.raises(SettingsError, match="web_download_timeout_seconds"):
        load_settings(environ={"SPYGLASS_WEB_DOWNLOAD_TIMEOUT_SECONDS": "0"})


def test_login_limits_from_toml_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("login_failures_per_user_address = 10\nlogin_failure_window_seconds = 900\n")
    settings = load_settings(config, environ={"SPYGLASS_LOGIN_FAILURES_PER_ADDRESS": "0"})
    assert settings.login_failures_per_user_address == 10
    assert settings.login_failure_window_seconds == 900
    assert settings.login_failures_per_address == 0
    assert load_settings(environ={"SPYGLASS_PASSWORD_CHECK_CONCURRENCY": "3"}).password_checks_at_once == 3
    assert load_settings(environ={}).password_checks_at_once >= 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_request_body_bytes", 100),
        ("max_request_headers", 5),
        ("max_request_header_line_bytes", 100),
        ("max_request_header_line_bytes", 128 * 1024),  # longer than all headers together may be
    ],
)
def test_request_limits_must_leave_room_for_real_requests(name: str, value: int) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(environ={f"SPYGLASS_{name.upper()}": str(value)})


def test_image_cache_is_off_by_default_and_lives_under_the_data_dir(tmp_path: Path) -> None:
    assert load_settings(environ={}).image_cache_path is None
    on = load_settings(environ={"SPYGLASS_IMAGE_CACHE": "true", "SPYGLASS_DATA_DIR": str(tmp_path)})
    assert on.image_cache_path == tmp_path / "image-cache"
    assert on.image_cache_max_size == 10 * 1024**3
    elsewhere = load_settings(environ={"SPYGLASS_IMAGE_CACHE": "1", "SPYGLASS_IMAGE_CACHE_DIR": "/srv/c"})
    assert elsewhere.image_cache_path == Path("/srv/c")


def test_signature_certificate_sources_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"signature_certificate_dir .* is not a directory"):
        load_settings(environ={"SPYGLASS_SIGNATURE_CERTIFICATE_DIR": str(tmp_path / "missing")})
    with pytest.raises(SettingsError, match=r"key_manager_config_file .* is not a file"):
        load_settings(environ={"SPYGLASS_KEY_MANAGER_CONFIG_FILE": str(tmp_path)})
    loaded = load_settings(environ={"SPYGLASS_SIGNATURE_CERTIFICATE_DIR": str(tmp_path)})
    assert loaded.signature_certificate_dir == str(tmp_path)


def test_one_worker_per_core_and_a_pool_as_large_as_the_threads_by_default() -> None:
    settings = load_settings(environ={})
    assert settings.workers == (os.cpu_count() or 1)
    assert settings.database_connections == settings.threads + 2
    assert load_settings(environ={"SPYGLASS_THREADS": "4"}).database_connections == 6
    with pytest.raises(SettingsError, match="threads must be at least 1"):
        load_settings(environ={"SPYGLASS_THREADS": "0"})
