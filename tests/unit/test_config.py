"""Valid stack config: defaults, derived values and warnings."""

import json
import re

from components.config import ETCD_IMAGE, POSTGRES_IMAGES, load_stack_config


def test_defaults_are_a_highly_available_docker_stack():
    config = load_stack_config({}, "dev")
    assert config.platform == "docker"
    assert config.app.replicas == 2
    assert config.database.replicas == 1
    assert config.health_check_path == "/readyz"
    assert config.warnings == []


def test_protect_defaults_on_for_prod_only_and_can_be_overridden():
    # A Docker prod stack needs a certificate of its own; without TLS the config alone is valid.
    plain_http = {"hastack:loadBalancer": json.dumps({"tls": {"enabled": False}})}
    assert load_stack_config(plain_http, "prod").protect is True
    assert load_stack_config({}, "dev").protect is False
    assert load_stack_config({"hastack:protect": "true"}, "dev").protect is True


def test_single_replica_is_allowed_with_a_warning():
    config = load_stack_config({"hastack:app": json.dumps({"replicas": 1})}, "dev")
    assert config.warnings == ["hastack:app.replicas is 1: one replica is not highly available"]


def test_numeric_postgres_version_is_read_as_a_major_label():
    config = load_stack_config({"hastack:database": json.dumps({"version": 17})}, "dev")
    assert config.database.version == "17"
    assert config.database.image == POSTGRES_IMAGES["17"]


def test_lb_health_path_overrides_the_app_health_path():
    raw = {"hastack:loadBalancer": json.dumps({"healthCheck": {"path": "/health"}})}
    assert load_stack_config(raw, "dev").health_check_path == "/health"


def test_every_postgres_image_is_pinned_to_a_minor_version():
    for major, image in POSTGRES_IMAGES.items():
        assert image.startswith(f"postgres:{major}.") and "latest" not in image


def test_patroni_on_docker_is_accepted_with_synchronous_mode_on_by_default():
    config = load_stack_config({"hastack:database": json.dumps({"failover": "patroni", "replicas": 1})}, "dev")
    assert config.platform == "docker" and config.database.failover == "patroni"
    assert config.database.synchronous_mode is True
    relaxed = load_stack_config({"hastack:database": json.dumps({"failover": "patroni", "synchronousMode": False})}, "dev")
    assert relaxed.database.synchronous_mode is False


def test_etcd_image_is_pinned_to_a_patch_release():
    assert re.fullmatch(r"quay\.io/coreos/etcd:v3\.5\.\d+", ETCD_IMAGE)
