"""The site file's ``mqtt:`` section and ``--mqtt URL``: strict like every section, the password out of sight."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.faces.mqtt.wiring import config_from_url
from gateway.site.config import ConfigError, MqttConfig, parse_site

SECRET = "s3cret-Broker-pass"


def test_the_password_stays_out_of_repr_and_str() -> None:
    config = MqttConfig(host="broker", username="gw", password=SECRET)
    assert SECRET not in repr(config) and SECRET not in str(config)


@pytest.mark.parametrize(("data", "message"), [
    ({"host": "b", "hots": "x"}, "Extra inputs are not permitted"),
    ({"host": "b", "password": SECRET}, "a password needs a username"),
    ({"host": "b", "username": "u", "password": SECRET, "password_env": "X"}, "at most one of password, password_env"),
    ({"host": "b", "ca_file": "ca.pem"}, "need tls: true"),
    ({"host": "b", "tls": True, "client_cert": "c.pem"}, "client_cert and client_key go together"),
    ({"host": "b", "topic_prefix": "site/#"}, "String should match pattern"),
    ({"host": "b", "topic_prefix": "/site"}, "String should match pattern"),
    ({"host": "b", "client_id": "x" * 24}, "String should match pattern"),
    ({"host": "b", "port": 0}, "greater than or equal to 1"),
    ({"host": "b", "publish_interval_s": 0}, "greater than 0"),
])
def test_a_wrong_section_is_refused_with_the_key_at_fault(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MqttConfig.model_validate(data)
    assert message in str(caught.value)
    # What an installer sees (check-config, run) names the key and never the value.
    site = {"installation_limit_a": 40, "network_limit_a": 20, "mqtt": data}
    with pytest.raises(ConfigError) as shown:
        parse_site(site, "site.yaml", lambda profile: None)
    assert str(shown.value).count("mqtt") >= 1 and SECRET not in str(shown.value)


def test_the_demo_url() -> None:
    assert config_from_url("mqtt://127.0.0.1:18830") == MqttConfig(host="127.0.0.1", port=18830)
    tls = config_from_url(f"mqtts://gw:{SECRET.replace('-', '%2D')}@broker.example/site-a")
    assert (tls.tls, tls.port, tls.username, tls.password, tls.topic_prefix) == (True, 8883, "gw", SECRET, "site-a")


@pytest.mark.parametrize(("url", "message"), [
    ("http://broker", "is not mqtt://host[:port]"),
    ("mqtt://", "is not mqtt://host[:port]"),
    (f"mqtt://gw:{SECRET}@broker:99999", "the port must be 1..65535"),
    (f"mqtt://gw:{SECRET}@broker/a/#", "is not mqtt://host[:port]"),
    (f"mqtt://gw:{SECRET}@broker/a+b", "topic_prefix: String should match pattern"),
])
def test_a_wrong_url_says_what_is_wrong_and_never_echoes_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match="--mqtt") as caught:
        config_from_url(url)
    assert message in str(caught.value) and SECRET not in str(caught.value)
