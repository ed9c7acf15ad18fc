"""Process settings from ``TSUNAGU_*``: read, validated where they are made, secrets kept out of messages."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import ImproperlyConfigured
from core.settings import EMBEDDED_BROKER, Settings, load_settings, redact_url


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            "TSUNAGU_DATABASE_URL": "postgresql+asyncpg://app:pw@db.internal:5432/tsunagu",
            "TSUNAGU_BROKER_URL": "amqp://guest:guest@mq.internal:5672/",
            "TSUNAGU_ENV": "production",
            "TSUNAGU_HOST": "0.0.0.0",
            "TSUNAGU_PORT": "8080",
            "TSUNAGU_WORKERS": "4",
            "TSUNAGU_LOG_FORMAT": "console",
            "TSUNAGU_LOG_LEVEL": "debug",
            "TSUNAGU_MUNICIPALITIES_DIR": "/etc/tsunagu/municipalities",
            "TSUNAGU_REFRESH_INTERVAL": "1.5",
            "TSUNAGU_PATH_PREFIX_ROUTING": "true",
            "UNRELATED": "ignored",
        }
    )
    assert settings == Settings(
        database_url="postgresql+asyncpg://app:pw@db.internal:5432/tsunagu",
        broker_url="amqp://guest:guest@mq.internal:5672/",
        environment="production",
        host="0.0.0.0",
        port=8080,
        workers=4,
        log_format="console",
        log_level="debug",
        municipalities_dir="/etc/tsunagu/municipalities",
        refresh_interval=1.5,
        path_prefix_routing=True,
    )
    assert settings.is_postgres and settings.uses_path_prefix and not settings.json_logs


def test_the_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_PORT", "8765")
    monkeypatch.setenv("TSUNAGU_ENV", "production")
    settings = load_settings()
    assert settings.port == 8765 and settings.environment == "production"


def test_defaults_empty_values_and_overrides() -> None:
    settings = load_settings({"TSUNAGU_PORT": "", "TSUNAGU_ENV": "production"}, port=9000, broker_url=None)
    assert settings.port == 9000  # an override beats the environment; "" counts as unset
    assert settings.broker_url == EMBEDDED_BROKER  # None overrides are ignored
    assert settings.is_sqlite
    assert not settings.uses_path_prefix and settings.json_logs  # production: no /m/<slug>/, JSON logs


@pytest.mark.parametrize(
    ("environ", "pattern"),
    [
        ({"TSUNAGU_PORT": "abc"}, r"invalid setting: Expected `int`, got `str` - at TSUNAGU_PORT"),
        ({"TSUNAGU_PORT": "0"}, r"TSUNAGU_PORT must be between 1 and 65535, got 0"),
        ({"TSUNAGU_PORT": "65536"}, r"TSUNAGU_PORT must be between 1 and 65535, got 65536"),
        ({"TSUNAGU_WORKERS": "0"}, r"TSUNAGU_WORKERS must be between 1 and 64"),
        ({"TSUNAGU_REFRESH_INTERVAL": "0"}, r"TSUNAGU_REFRESH_INTERVAL must be between 0.01 and 60 seconds"),
        ({"TSUNAGU_REFRESH_INTERVAL": "61"}, r"TSUNAGU_REFRESH_INTERVAL must be between 0.01 and 60"),
        ({"TSUNAGU_REFRESH_INTERVAL": "nan"}, r"TSUNAGU_REFRESH_INTERVAL must be between"),
        ({"TSUNAGU_REFRESH_INTERVAL": "-inf"}, r"TSUNAGU_REFRESH_INTERVAL must be between"),
        ({"TSUNAGU_REFRESH_INTERVAL": "soon"}, r"TSUNAGU_REFRESH_INTERVAL"),
        ({"TSUNAGU_ENV": "prod"}, r"TSUNAGU_ENV"),
        ({"TSUNAGU_LOG_LEVEL": "loud"}, r"TSUNAGU_LOG_LEVEL"),
        ({"TSUNAGU_PATH_PREFIX_ROUTING": "perhaps"}, r"TSUNAGU_PATH_PREFIX_ROUTING"),
        ({"TSUNAGU_DATABASE_URL": "mysql://db/x"}, r"^TSUNAGU_DATABASE_URL must start with sqlite"),
        ({"TSUNAGU_DATABASE_URL": "postgresql://db/x"}, r"^TSUNAGU_DATABASE_URL must start with .*asyncpg"),
        ({"TSUNAGU_BROKER_URL": "http://mq/"}, r"TSUNAGU_BROKER_URL must start with redis://, amqp://"),
        ({"TSUNAGU_BROKER_URL": "kafka://mq/"}, r"TSUNAGU_BROKER_URL"),
    ],
)
def test_a_bad_value_names_the_variable(environ: dict[str, str], pattern: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=pattern) as caught:
        load_settings(environ)
    assert "`$." not in str(caught.value)  # msgspec's own path is translated to the variable name


@given(st.floats(allow_nan=False).filter(lambda x: not 0.01 <= x <= 60))
def test_any_refresh_interval_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^TSUNAGU_REFRESH_INTERVAL must be between 0.01 and 60"):
        load_settings({"TSUNAGU_REFRESH_INTERVAL": repr(value)})


@given(st.floats(min_value=0.01, max_value=60))
def test_any_refresh_interval_in_range_is_accepted(value: float) -> None:
    assert load_settings({"TSUNAGU_REFRESH_INTERVAL": repr(value)}).refresh_interval == value


@given(st.integers().filter(lambda p: not 1 <= p <= 65535))
def test_any_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^TSUNAGU_PORT must be between 1 and 65535"):
        load_settings({"TSUNAGU_PORT": str(port)})


password = st.text(
    alphabet=string.ascii_letters + string.digits + "!#$%&()*+,-./:;<=>?@[]^_{|}~", min_size=6, max_size=30
).map(lambda p: f"Pw{p}")
user = st.sampled_from(["", "app", "tsunagu_app", "guest"])
bad_database_url = st.sampled_from(
    [
        "mysql://",
        "postgresql://",
        "postgres://",
        "sqlite://",
        "postgresql+asyncpg:/",
        "postgresql+asyncpg//",
        "postgresql+psycopg://",
    ]
)
bad_broker_url = st.sampled_from(["http://", "https://", "kafka://", "redis:/", "redis//", "amqp:", "sqs://"])


@given(
    user,
    password,
    st.sampled_from([("TSUNAGU_DATABASE_URL", bad_database_url), ("TSUNAGU_BROKER_URL", bad_broker_url)]),
    st.data(),
)
def test_a_password_in_a_rejected_url_never_reaches_the_message(
    name: str, secret: str, target: tuple[str, st.SearchStrategy[str]], data: st.DataObject
) -> None:
    variable, prefixes = target
    url = f"{data.draw(prefixes)}{name}:{secret}@server.internal:5432/tsunagu"
    with pytest.raises(ImproperlyConfigured) as caught:
        load_settings({variable: url})
    message = str(caught.value)
    assert message.startswith(variable)
    assert secret not in message
    assert ":***@server.internal:5432/tsunagu" in message  # still says which URL it was


@given(user, password)
def test_redact_url_keeps_everything_but_the_password(name: str, secret: str) -> None:
    for scheme in ("postgresql+asyncpg", "redis", "amqp"):
        url = f"{scheme}://{name}:{secret}@db.internal:5432/tsunagu?sslmode=require"
        assert redact_url(url) == f"{scheme}://{name}:***@db.internal:5432/tsunagu?sslmode=require"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///var/tsunagu.sqlite3",
        "redis://127.0.0.1:6379/0",
        "amqp://guest@127.0.0.1:5672/",
        "embedded://",
    ],
)
def test_redact_url_leaves_urls_without_a_password_alone(url: str) -> None:
    assert redact_url(url) == url


def test_settings_made_directly_are_validated_too() -> None:
    with pytest.raises(ImproperlyConfigured, match="TSUNAGU_WORKERS must be between 1 and 64, got 65"):
        Settings(workers=65)
