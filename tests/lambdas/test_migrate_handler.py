"""The migrate custom resource against a real database; the RDS secret lookup through moto."""

import json

import boto3
import pytest
from moto import mock_aws

from trainset.errors import ConfigurationError
from trainset.local.images import LocalContext
from trainset.local.images import load_handler as load_lambda
from trainset.store import config as store_config
from trainset.store.config import url_from_rds_secret


def Context():  # noqa: N802 - reads like the class it stands for
    return LocalContext("trainset-migrate")


def load_handler():
    return load_lambda("migrate")


def test_create_then_update_applies_migrations_once(db, database_url, monkeypatch):
    monkeypatch.setenv("TRAINSET_DATABASE_URL", database_url)
    db.run("DROP SCHEMA public CASCADE")
    db.run("CREATE SCHEMA public")
    handler = load_handler()
    result = handler.lambda_handler({"RequestType": "Create"}, Context())
    again = handler.lambda_handler(
        {"RequestType": "Update", "PhysicalResourceId": "trainset-schema"}, Context())
    assert result["Data"]["Applied"].startswith("0001_core")
    assert again["Data"]["Applied"] == "none"
    assert db.run("SELECT count(*) FROM coders")[0][0] == 0


def test_delete_leaves_the_schema(db):
    handler = load_handler()
    assert handler.lambda_handler({"RequestType": "Delete", "PhysicalResourceId": "x"},
                                  Context()) == {"PhysicalResourceId": "x"}
    assert db.run("SELECT count(*) FROM schema_migrations")[0][0] >= 1


def test_rds_secret_becomes_a_tls_url():
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="db", SecretString=json.dumps({
            "username": "trainset", "password": "p@ss/word", "host": "db.example.internal",
            "port": 5432, "dbname": "trainset"}))["ARN"]
        url = url_from_rds_secret(arn, client)
        assert url == ("postgresql://trainset:p%40ss%2Fword@db.example.internal:5432/trainset"
                       "?sslmode=require")
        bad = client.create_secret(Name="bad", SecretString=json.dumps({"password": "hunter2"}))
        with pytest.raises(ConfigurationError) as caught:
            url_from_rds_secret(bad["ARN"], client)
        assert "hunter2" not in caught.value.message and "username" in caught.value.message


def test_proxy_host_and_port_replace_the_secrets(monkeypatch):
    """In AWS the API connects through the RDS Proxy: TRAINSET_DB_HOST/_PORT name it, and the
    secret's user and password (which the proxy accepts) still come from the secret."""
    for name in ("TRAINSET_DATABASE_URL", "TRAINSET_DB_HOST", "TRAINSET_DB_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="db", SecretString=json.dumps({
            "username": "trainset", "password": "pw", "host": "db.example.internal",
            "port": 5433, "dbname": "trainset"}))["ARN"]
        monkeypatch.setenv("TRAINSET_DB_SECRET_ARN", arn)
        assert store_config.database_url() == (
            "postgresql://trainset:pw@db.example.internal:5433/trainset?sslmode=require")
        monkeypatch.setenv("TRAINSET_DB_HOST", "proxy.example.internal")
        monkeypatch.setenv("TRAINSET_DB_PORT", "5432")
        assert store_config.database_url() == (
            "postgresql://trainset:pw@proxy.example.internal:5432/trainset?sslmode=require")
        # An explicit URL (local runs, tests) still wins over both.
        monkeypatch.setenv("TRAINSET_DATABASE_URL", "postgresql://me@localhost/x")
        assert store_config.database_url() == "postgresql://me@localhost/x"


def test_add_manager_by_direct_invocation(db, database_url, monkeypatch):
    monkeypatch.setenv("TRAINSET_DATABASE_URL", database_url)
    handler = load_handler()
    created = handler.lambda_handler({"action": "add-manager", "name": "bob"}, Context())
    assert created["ok"] and created["coder"]["role"] == "manager"
    assert db.run("SELECT name, role, status FROM coders") == [["bob", "manager", "certified"]]
    again = handler.lambda_handler({"action": "add-manager", "name": "bob"}, Context())
    assert again == {"ok": False, "error": "a coder named bob already exists", "details": None}
    bad = handler.lambda_handler({"action": "add-manager", "name": "no spaces"}, Context())
    assert not bad["ok"] and bad["details"][0]["field"] == "name"
