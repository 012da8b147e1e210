"""Settings precedence: option > environment > config file > default."""

from __future__ import annotations

import pytest

from kratomlit.config import DEFAULT_EUTILS_URL, load_settings
from kratomlit.errors import UsageError


def test_defaults(tmp_path):
    s = load_settings({"home": tmp_path}, env={})
    assert s.eutils_url == DEFAULT_EUTILS_URL and s.email is None
    assert s.requests_per_second == 3 and s.library_path == tmp_path / "library.db"


def test_precedence(tmp_path):
    (tmp_path / "config.toml").write_text('email = "file@x.org"\napi_key = "filekey"\n'
                                          'eutils_url = "http://file.invalid/eutils"\n')
    env = {"KRATOMLIT_HOME": str(tmp_path), "NCBI_EMAIL": "env@x.org"}
    s = load_settings({"email": None}, env=env)
    assert s.email == "env@x.org" and s.api_key == "filekey"
    assert s.eutils_url == "http://file.invalid/eutils/" and s.requests_per_second == 10
    s = load_settings({"email": "opt@x.org"}, env=env)
    assert s.email == "opt@x.org"


@pytest.mark.parametrize("text", ['email = "unterminated', 'colour = "red"'])
def test_bad_config_file_is_a_usage_error(tmp_path, text):
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(UsageError, match="config.toml"):
        load_settings({"home": tmp_path}, env={})


def test_bad_url(tmp_path):
    with pytest.raises(UsageError, match="http"):
        load_settings({"home": tmp_path, "eutils_url": "ftp://x"}, env={})


def test_bad_config_via_cli_has_no_traceback(cli, env, tmp_path):
    from pathlib import Path

    (Path(env["KRATOMLIT_HOME"])).mkdir(parents=True, exist_ok=True)
    (Path(env["KRATOMLIT_HOME"]) / "config.toml").write_text("=")
    result = cli("info")
    assert result.exit_code == 2 and "not valid TOML" in result.stderr


def test_max_response_mb_from_option_env_and_file(tmp_path):
    s = load_settings({"home": tmp_path}, env={})
    assert s.max_response_mb == 100 and s.max_response_bytes == 100 * 2**20
    (tmp_path / "config.toml").write_text("max_response_mb = 20\n")
    assert load_settings({"home": tmp_path}, env={}).max_response_mb == 20
    env = {"KRATOMLIT_MAX_RESPONSE_MB": "30"}
    assert load_settings({"home": tmp_path}, env=env).max_response_mb == 30
    assert load_settings({"home": tmp_path, "max_response_mb": 40}, env=env).max_response_mb == 40


@pytest.mark.parametrize("value", ["0", "4097", "1.5", "lots", "-3"])
def test_bad_max_response_mb_is_a_usage_error(tmp_path, value):
    with pytest.raises(UsageError, match="KRATOMLIT_MAX_RESPONSE_MB"):
        load_settings({"home": tmp_path}, env={"KRATOMLIT_MAX_RESPONSE_MB": value})
    (tmp_path / "config.toml").write_text(f"max_response_mb = {value!r}\n")
    with pytest.raises(UsageError, match="max_response_mb"):
        load_settings({"home": tmp_path}, env={})


@pytest.mark.parametrize("url", ["http://127.0.0.1:notaport/", "http://h:0/", "http://:80/",
                                 "http://a b/", "http://h/?db=pubmed", "https://u:p@h/"])
def test_unusable_urls_are_refused(tmp_path, url):
    with pytest.raises(UsageError, match="not usable"):
        load_settings({"home": tmp_path, "eutils_url": url}, env={})
