"""The GitHub workflows are valid YAML and only reference things that exist:
make targets, stack files, policy configs, local actions and reusable workflows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((REPO / ".github" / "actions").glob("*/action.yml"))
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in REPO.glob("Pulumi.*.yaml"))


def load(path: Path) -> dict:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    return workflow.get("on", workflow.get(True))


def steps_of(document: dict) -> list[dict]:
    if "runs" in document:
        return document["runs"]["steps"]
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def all_text(document) -> list[str]:
    if isinstance(document, dict):
        return [text for key, value in document.items() for text in all_text(key) + all_text(value)]
    if isinstance(document, list):
        return [text for item in document for text in all_text(item)]
    return [document] if isinstance(document, str) else []


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(), re.MULTILINE))


def test_there_are_workflows_for_pull_requests_and_deploys():
    assert {p.name for p in WORKFLOWS} >= {"pull-request.yml", "deploy.yml"}


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: str(p.relative_to(REPO)))
def test_valid_yaml_with_known_make_targets_and_stacks(path):
    document = load(path)
    if path in WORKFLOWS:
        assert triggers(document), "a workflow needs `on:`"
        for name, job in document["jobs"].items():
            assert "runs-on" in job or "uses" in job, f"job {name} runs nowhere"
    targets = make_targets()
    for text in all_text(document):
        for target in re.findall(r"\bmake\s+([a-z][\w-]*)", text):
            assert target in targets, f"`make {target}` is not a Makefile target"
        for stack in re.findall(r"\bSTACK=([a-z][\w-]*)", text):
            assert stack in STACKS, f"STACK={stack} has no Pulumi.{stack}.yaml"


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: str(p.relative_to(REPO)))
def test_local_actions_and_reusable_workflows_exist(path):
    document = load(path)
    local = [text for text in all_text(document) if text.startswith("./.github/")]
    for reference in local:
        target = REPO / reference
        assert target.is_file() or (target / "action.yml").is_file(), reference


def _stack_values(document: dict) -> list[str]:
    values = []
    for job in document.get("jobs", {}).values():
        values += job.get("strategy", {}).get("matrix", {}).get("stack", [])
        for step in job.get("steps", []):
            stack = step.get("with", {}).get("stack", "")
            if stack and "${{" not in stack:
                values.append(stack)
    return values


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml"])
def test_every_shipped_stack_and_only_those(name):
    values = _stack_values(load(REPO / ".github" / "workflows" / name))
    assert sorted(set(values)) == STACKS
    for stack in values:
        assert (REPO / f"Pulumi.{stack}.yaml").is_file()
        assert (REPO / "policy" / f"config.{stack}.json").is_file()


def test_the_shared_action_runs_the_gate_then_pulumi_with_the_pack():
    action = load(REPO / ".github" / "actions" / "pulumi-stack" / "action.yml")
    steps = steps_of(action)
    runs = [step.get("run", "") for step in steps]
    assert any("make plan STACK=${{ inputs.stack }}" in run for run in runs)
    pulumi = next(step for step in steps if str(step.get("uses", "")).startswith("pulumi/actions@"))
    assert steps.index(pulumi) > next(i for i, run in enumerate(runs) if "make plan" in run), "gate first"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert (REPO / pulumi["with"]["policyPacks"] / "PulumiPolicy.yaml").is_file()
    assert pulumi["with"]["policyPackConfigs"] == "policy/config.${{ inputs.stack }}.json"
    assert pulumi["with"]["comment-on-pr"] == "${{ inputs.command == 'preview' }}"
    login = next(step for step in steps if str(step.get("uses", "")).startswith("azure/login@"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}, "OIDC, no stored client secret"


def test_pull_request_runs_tests_gate_then_preview_for_same_repo_prs_only():
    workflow = load(REPO / ".github" / "workflows" / "pull-request.yml")
    assert "pull_request" in triggers(workflow)
    jobs = workflow["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
    assert jobs["gate"]["needs"] == "test"
    assert any("make plan STACK=${{ matrix.stack }}" in s.get("run", "") for s in jobs["gate"]["steps"])
    preview = jobs["preview"]
    assert preview["needs"] == "gate"
    assert "head.repo.full_name == github.repository" in preview["if"]
    assert preview["permissions"]["id-token"] == "write" and preview["permissions"]["pull-requests"] == "write"
    step = next(s for s in preview["steps"] if s.get("uses") == "./.github/actions/pulumi-stack")
    assert step["with"]["command"] == "preview"
    assert "HAS_PULUMI_TOKEN" in step["if"], "without credentials the preview is skipped, not failed"


def test_deploy_goes_dev_staging_prod_with_prod_behind_an_environment():
    workflow = load(REPO / ".github" / "workflows" / "deploy.yml")
    assert triggers(workflow)["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    assert [jobs[name]["needs"] for name in ("dev", "staging", "prod")] == ["test", "dev", "staging"]
    for stack in ("dev", "staging", "prod"):
        assert jobs[stack]["environment"] == stack
        assert jobs[stack]["permissions"]["id-token"] == "write"
        step = next(s for s in jobs[stack]["steps"] if s.get("uses") == "./.github/actions/pulumi-stack")
        assert step["with"] == {**step["with"], "stack": stack, "command": "up"}
    assert workflow["concurrency"]["cancel-in-progress"] is False, "never cancel a running update"


# ---------------------------------------------------------------- schema and the real-engine job


def test_workflows_and_actions_match_githubs_schemas_without_downloading_anything():
    # check-jsonschema vendors SchemaStore's GitHub schemas; a proxy that refuses every
    # connection proves the check never fetched one.
    offline = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    checker = str(Path(sys.executable).with_name("check-jsonschema"))
    for schema, paths in (("vendor.github-workflows", WORKFLOWS), ("vendor.github-actions", ACTIONS)):
        result = subprocess.run([checker, "--builtin-schema", schema, *map(str, paths)],
                                capture_output=True, text=True, env=offline, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ok -- validation done" in result.stdout


def test_the_schema_check_can_fail():
    broken = yaml.safe_dump({"on": {"pull_request": {}}, "jobs": {"x": {"runs-on": "ubuntu-latest", "steps": [{"rn": "oops"}]}}})
    checker = str(Path(sys.executable).with_name("check-jsonschema"))
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", "-"], input=broken,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout


def real_engine_steps() -> list[dict]:
    job = load(REPO / ".github" / "workflows" / "pull-request.yml")["jobs"]["real-engine"]
    assert job["needs"] == "test" and job["runs-on"] == "ubuntu-latest"
    return job["steps"]


def test_real_engine_job_deploys_verifies_kills_checks_replays_and_always_destroys():
    steps = real_engine_steps()
    runs = [step.get("run", "") for step in steps]

    def index_of(text: str) -> int:
        return next(i for i, run in enumerate(runs) if text in run)

    order = [index_of(text) for text in ("pulumi login --local", "--secrets-provider passphrase",
                                         "pulumi up -s dev --yes", "python -m verify ",
                                         "python -m verify.engine_drill", "pulumi destroy -s dev --yes")]
    assert order == sorted(order), "login, stack init, up, verify, kill drill, destroy"
    assert "PULUMI_CONFIG_PASSPHRASE" in runs[index_of("pulumi login --local")], "the passphrase provider's secret"
    destroy = steps[index_of("pulumi destroy")]
    assert destroy["if"].startswith("always()"), "destroy runs even when a step before it failed"
    # Only where Docker is present: every step after the probe is conditioned on it.
    probe = next(i for i, step in enumerate(steps) if step.get("id") == "docker")
    assert "docker info" in runs[probe]
    assert all("steps.docker.outputs.present == 'true'" in step["if"] for step in steps[probe + 1:])


def test_every_command_the_real_engine_job_calls_exists_in_the_project(dev_outputs):
    # Continued lines (a trailing backslash) read as one command.
    text = "\n".join(step.get("run", "") for step in real_engine_steps()).replace("\\\n", " ")
    modules = re.findall(r"python -m ([\w.]+)", text)
    assert set(modules) == {"verify", "verify.engine_drill"}
    for module in modules:
        path = REPO / module.replace(".", "/")
        assert (path / "__main__.py").is_file() or path.with_suffix(".py").is_file(), module
    for output in re.findall(r"pulumi stack output (\w+)", text):
        assert output in dev_outputs, f"the dev stack exports no {output!r}"
    assert all(stack == "dev" for stack in re.findall(r"-s (\w+)", text)) and (REPO / "Pulumi.dev.yaml").is_file()
    # The drill's flags as the job passes them parse.
    from verify.engine_drill import parse_args
    flags = re.search(r"python -m verify.engine_drill (.*)", text).group(1)
    parsed = parse_args([re.sub(r'^"\$.*"$', "value", part) for part in re.findall(r'--\w+|"[^"]*"', flags)])
    assert (parsed.kill, parsed.db, parsed.cacert) == ("value", "value", "value")


@pytest.fixture(scope="module")
def dev_outputs() -> dict:
    from plan.engine import run_stack_file
    return run_stack_file(REPO / "Pulumi.dev.yaml").outputs
