"""`hybridplace run` and the commands that reach a cluster, on bad settings and unusable
credentials: exit 2 (or 1 for an unreachable API server) with one line naming the flag and its
environment variable or the file, never a traceback and never a process that retries for ever."""

from __future__ import annotations

import pytest
import yaml
from cases.mock_api import closed_port_url
from hybridplace.cli.main import main
from hybridplace.config import Settings, convert_setting
from hybridplace.controller.plan import image_not_allowed


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize("argv, says", [
    (["--workers", "many"], "--workers (HP_WORKERS): 'many' is not a valid int"),
    (["--resync-seconds", "nan"], "--resync-seconds (HP_RESYNC_SECONDS) is nan"),
    (["--stall-seconds", "inf"], "--stall-seconds (HP_STALL_SECONDS) is inf"),
], ids=["not-a-number", "nan", "inf"])
def test_a_bad_flag_is_one_line_naming_the_flag_and_its_variable(argv, says, capsys):
    assert main(["run", *argv]) == 2
    assert says in one_line(capsys)


def test_a_bad_variable_names_the_variable_and_its_flag(monkeypatch, capsys):
    monkeypatch.setenv("HP_WORKERS", "many")
    assert main(["run"]) == 2
    assert "environment variable HP_WORKERS (--workers): 'many' is not a valid int" in one_line(capsys)


def test_the_registries_flag_is_a_list_as_its_variable_is(monkeypatch):
    registries = convert_setting("allowed_image_registries", "ghcr.io/acme, quay.io/team")
    assert registries == ("ghcr.io/acme", "quay.io/team")
    monkeypatch.setenv("HP_ALLOWED_IMAGE_REGISTRIES", "ghcr.io/acme, quay.io/team")
    assert Settings.from_env().allowed_image_registries == registries
    assert image_not_allowed("ghcr.io/acme/worker:1", registries) is None
    assert "not from an allowed registry" in image_not_allowed("docker.io/evil/worker:1", registries)


@pytest.mark.parametrize("content", [None, "garbage: [\n", "apiVersion: v1\nkind: Config\n"],
                         ids=["missing", "not-yaml", "no-cluster"])
def test_run_without_usable_credentials_stops_at_once_in_one_line(content, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
    kubeconfig = tmp_path / "kubeconfig"
    if content is not None:
        kubeconfig.write_text(content)
    assert main(["run", "--kubeconfig", str(kubeconfig), "--metrics-port", "0", "--liveness", ""]) == 2
    assert f"the kubeconfig {kubeconfig} cannot be used" in one_line(capsys)


@pytest.mark.parametrize("command", [["explain", "web"], ["profile", "export"],
                                     ["loadgen", "web", "--rps", "1", "--seconds", "1"]])
def test_a_kubeconfig_that_is_not_yaml_is_named_in_one_line(command, tmp_path, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("garbage: [\n")
    assert main([*command, "--kubeconfig", str(kubeconfig)]) == 2
    assert f"--kubeconfig {kubeconfig}: cannot use it" in one_line(capsys)


def test_loadgen_against_an_api_server_that_is_gone_is_one_line(tmp_path, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": closed_port_url()}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    assert main(["loadgen", "web", "--rps", "1", "--seconds", "1", "--kubeconfig", str(kubeconfig)]) == 1
    assert "cannot reach the API server at http://127.0.0.1:" in one_line(capsys)


@pytest.mark.parametrize("value", ["-1", "0", "nan"])
def test_loadgen_refuses_a_timeout_that_cannot_work(value, capsys):
    assert main(["loadgen", "web", "--rps", "1", "--seconds", "1", "--timeout", value]) == 2
    assert "--timeout" in one_line(capsys)


def test_the_api_servers_transport_errors_are_unreachable_and_nothing_else_is():
    """What explain, report and loadgen print as "cannot reach the API server" (else re-raised):
    refused, timed out, reset, TLS; never a bug of ours."""
    import ssl

    import urllib3
    from hybridplace.cli.errors import unreachable

    pool = urllib3.HTTPConnectionPool("127.0.0.1", 1)
    for err in (urllib3.exceptions.MaxRetryError(pool, "/", ConnectionRefusedError("refused")),
                urllib3.exceptions.ReadTimeoutError(pool, "/", "read timed out"),
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()),
                ssl.SSLError("certificate verify failed")):
        assert unreachable(err), err
    for err in (KeyError("x"), ValueError("bad"), AttributeError("y")):
        assert not unreachable(err), err
