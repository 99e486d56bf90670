"""App tier: enough replicas, every replica health-probed, images pinned."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel

from .base import HastackResourcePolicy, HastackStackPolicy
from .resources import (
    AZURE_CONTAINER_APP,
    DOCKER_BUILT_IMAGE,
    DOCKER_CONTAINER,
    DOCKER_REMOTE_IMAGE,
    DOCKER_SERVICE,
    app_containers,
    container_spec,
    image_pin_problem,
    is_app_container,
    service_replicas,
)


def _check_min_replicas(args, report, settings):
    minimum = settings["minReplicas"]
    docker_replicas = [r for r in args.resources if r.resource_type == DOCKER_CONTAINER and is_app_container(r.urn)]
    swarm_apps = [r for r in args.resources if r.resource_type == DOCKER_SERVICE and is_app_container(r.urn)]
    container_apps = [r for r in args.resources if r.resource_type == AZURE_CONTAINER_APP]
    if not docker_replicas and not swarm_apps and not container_apps:
        args.not_applicable("no app replicas in this stack")
    if docker_replicas and len(docker_replicas) < minimum:
        report(
            f"{len(docker_replicas)} app container(s), at least {minimum} needed. "
            f"Fix: set hastack:app.replicas to {minimum} or more."
        )
    for service in swarm_apps:
        replicas = service_replicas(service.props)
        if replicas is not None and replicas < minimum:
            report(
                f"Swarm service '{service.name}' runs {replicas} replica(s), at least {minimum} needed. "
                f"Fix: set hastack:app.replicas to {minimum} or more.",
                service.urn,
            )
    for app in container_apps:
        scale = (app.props.get("template") or {}).get("scale") or {}
        replicas = scale.get("minReplicas") or 0
        if replicas < minimum:
            report(
                f"Container App '{app.name}' scales down to {replicas} replica(s), at least {minimum} needed. "
                f"Fix: set hastack:app.replicas to {minimum} or more (it becomes template.scale.minReplicas).",
                app.urn,
            )


app_min_replicas = HastackStackPolicy(
    "app-min-replicas",
    "The app runs at least the minimum number of replicas (Docker app containers; the Swarm app service's replicas; Container Apps minReplicas).",
    check=_check_min_replicas,
    # Replicas cost money: advisory unless a stack's policy config raises it.
    enforcement_level=EnforcementLevel.ADVISORY,
    settings={
        "minReplicas": {
            "type": "integer",
            "minimum": 1,
            "default": 2,
            "description": "Fewest app replicas that still serve while one is replaced or fails.",
        }
    },
)


def _check_health_checks(args, report, settings):
    props = args.props
    if args.resource_type in (DOCKER_CONTAINER, DOCKER_SERVICE):
        if not is_app_container(args.urn):
            args.not_applicable("not an app replica")
        spec = props if args.resource_type == DOCKER_CONTAINER else container_spec(props)
        tests = list((spec.get("healthcheck") or {}).get("tests") or [])
        # ["NONE"] switches off the image's healthcheck; ["CMD"] alone runs nothing.
        if not tests or tests[0] == "NONE" or len(tests) < 2:
            report(
                "This app container has no Docker healthcheck, so a hung replica keeps getting traffic. "
                "Fix: give the container a healthcheck on the health path (hastack:app.healthPath / healthcheckCommand)."
            )
        return
    for container in app_containers(props):
        probe_types = {str(p.get("type") or "").lower() for p in container.get("probes") or []}
        missing = [kind for kind in ("liveness", "readiness") if kind not in probe_types]
        if missing:
            report(
                f"Container '{container.get('name')}' has no {' and no '.join(missing)} probe. "
                "Fix: add Liveness (hastack:app.livenessPath) and Readiness (hastack:app.healthPath) httpGet probes."
            )


app_health_checks = HastackResourcePolicy(
    "app-health-checks",
    "Every app replica is health-probed (Docker and Swarm healthcheck; Container Apps liveness and readiness probes).",
    applies_to=[DOCKER_CONTAINER, DOCKER_SERVICE, AZURE_CONTAINER_APP],
    check=_check_health_checks,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# Where each resource type names the image it runs, pulls or builds.
_IMAGE_PROP = {DOCKER_CONTAINER: "image", DOCKER_REMOTE_IMAGE: "name", DOCKER_BUILT_IMAGE: "imageName"}


def _check_image_pinned(args, report, settings):
    if args.resource_type in _IMAGE_PROP:
        images = [(f"'{args.name}'", str(args.props.get(_IMAGE_PROP[args.resource_type]) or ""))]
    elif args.resource_type == DOCKER_SERVICE:
        images = [(f"service '{args.name}'", str(container_spec(args.props).get("image") or ""))]
    else:
        images = [(f"container '{c.get('name')}'", str(c.get("image") or "")) for c in app_containers(args.props)]
    for where, image in images:
        problem = image_pin_problem(image)
        if problem:
            report(
                f"The image '{image}' of {where} {problem}, so replicas can run different code. "
                "Fix: use a version tag (repo:1.4.2) or a digest (repo@sha256:...)."
            )


image_pinned = HastackResourcePolicy(
    "image-pinned",
    "Every image is pinned: a version tag, a digest or an image id, never 'latest' or untagged (Docker pulled/built images, containers and Swarm services; Container Apps).",
    applies_to=[*_IMAGE_PROP, DOCKER_SERVICE, AZURE_CONTAINER_APP],
    check=_check_image_pinned,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [app_min_replicas, app_health_checks, image_pinned]
