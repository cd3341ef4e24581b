"""The release artefacts a newcomer runs: deploy/compose.yaml (two replicas on one PostgreSQL),
deploy/Containerfile (non-root, the entrypoint these suites run) and .dockerignore. Checked
without a container engine, which CI machines may lack; `docker compose config` does the same
checks where one exists."""

import os
import re
import shlex

import yaml

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def read(path):
    with open(os.path.join(ROOT, path)) as file:
        return file.read()


def containerfile_exec(instruction):
    """The JSON (exec-form) arguments of the last ENTRYPOINT or CMD line."""
    lines = [line for line in read("deploy/Containerfile").splitlines() if line.startswith(instruction + " ")]
    assert lines, f"no {instruction}"
    return yaml.safe_load(lines[-1][len(instruction) + 1:])


def test_the_image_runs_keyward_serve_as_a_user_without_privileges():
    entrypoint, command = containerfile_exec("ENTRYPOINT"), containerfile_exec("CMD")
    # The suites start `KEYWARD_BIN serve` (conftest.py, tests/console): the same command.
    assert [os.path.basename(entrypoint[0])] + entrypoint[1:] + command == ["keyward", "serve"]
    users = [line.split()[1] for line in read("deploy/Containerfile").splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users
    assert re.search(r"useradd .*--uid 10001", read("deploy/Containerfile"))


def test_the_build_context_leaves_out_builds_data_and_history():
    ignored = {line.strip() for line in read(".dockerignore").splitlines() if line.strip() and not line.startswith("#")}
    for entry in ("target/", "keyward-data/", ".git", "**/node_modules/"):
        assert entry in ignored, entry


def test_compose_runs_two_replicas_that_share_only_the_database():
    compose = yaml.safe_load(read("deploy/compose.yaml"))
    services = compose["services"]
    assert set(services) == {"postgres", "keyward-1", "keyward-2"}
    replicas = [services["keyward-1"], services["keyward-2"]]
    for replica in replicas:
        assert replica["build"] == {"context": "..", "dockerfile": "deploy/Containerfile"}
        assert replica["command"] == ["serve"]
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        environment = replica["environment"]
        assert environment["KEYWARD_STORE_URL"].startswith("postgres://")
        assert environment["KEYWARD_MASTER_KEY_SOURCE"] == "env:KEYWARD_MASTER_KEYRING"
        assert "${KEYWARD_MASTER_KEYRING:?" in environment["KEYWARD_MASTER_KEYRING"], "no default keyring"
        assert "volumes" not in replica, "a replica keeps nothing on disk"
    assert replicas[0]["environment"] == replicas[1]["environment"]
    ports = [replica["ports"][0] for replica in replicas]
    assert len(set(ports)) == 2 and all(port.startswith("127.0.0.1:") for port in ports)
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    # Every variable the file reads is one the header tells the newcomer to export.
    header = read("deploy/compose.yaml").split("\nname:")[0]
    for variable in set(re.findall(r"\$\{([A-Z_]+):\?", read("deploy/compose.yaml"))):
        assert f"export {variable}=" in header, variable


def test_the_readme_build_command_matches_the_containerfile():
    usage = next(line for line in read("deploy/Containerfile").splitlines() if "docker build" in line)
    argv = shlex.split(usage.lstrip("# "))
    assert argv[argv.index("-f") + 1] == "deploy/Containerfile"
    assert "GIT_COMMIT" in usage
