"""Which settings are secrets: the token, the AWS secrets, a Redis or store password."""

from __future__ import annotations

from scrapy.settings import Settings

from tmapi_crawler.contract.credentials import secrets_from

TOKEN = "tok-REDACT-7c1e2f"


def test_the_secrets_are_the_token_the_aws_secrets_and_a_redis_password():
    settings = Settings(
        {
            "TMAPI_TOKEN": TOKEN,
            "AWS_ACCESS_KEY_ID": "AKIA-an-id-not-a-secret",
            "AWS_SECRET_ACCESS_KEY": "aws-secret-key-0123456789",
            "AWS_SESSION_TOKEN": "short",
            "REDIS_URL": "redis://:redis-pass-42@127.0.0.1:6379/0",
        }
    )
    assert secrets_from(settings) == (
        "aws-secret-key-0123456789",  # longest first: one may contain another
        "tok-REDACT-7c1e2f",
        "redis-pass-42",
    )  # "short" would mask ordinary words; the key id is not a secret
    assert secrets_from(Settings({"REDIS_URL": "redis://127.0.0.1:6379"})) == ()


def test_a_store_password_is_a_secret_from_the_setting_or_the_environment(
    monkeypatch,
):
    uri = "postgresql://crawler:store-pass-77@db.example/catalog"
    assert secrets_from(Settings({"TMAPI_STORE": uri})) == ("store-pass-77",)
    monkeypatch.setenv("TMAPI_STORE", uri)
    assert secrets_from(Settings()) == ("store-pass-77",)
    monkeypatch.setenv("TMAPI_STORE", "sqlite:///out/catalog.sqlite")
    assert secrets_from(Settings()) == ()


def test_a_redis_password_is_a_secret_from_the_environment_too(monkeypatch):
    # REDIS_URL is read from the environment when no setting gives it
    monkeypatch.setenv("REDIS_URL", "redis://:redis-env-pass-9@127.0.0.1:6379/0")
    assert secrets_from(Settings()) == ("redis-env-pass-9",)
