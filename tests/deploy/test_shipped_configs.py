"""Every config the project ships is one `osd-watchdog check-config` accepts: the examples,
the DaemonSets' ConfigMaps, the cephadm spec's file. Each is also what an end-to-end test of
its deployment runs (tests/e2e: test_installed, test_systemd_host, test_containers)."""

from __future__ import annotations

import pytest
import yaml

from tests.process import run_cli
from tests.shipped import CHECKOUT, EXAMPLES, KUBERNETES


def shipped_configs() -> dict[str, str]:
    """{where it ships: its TOML}."""
    found = {f"examples/{p.name}": p.read_text() for p in sorted(EXAMPLES.glob("*.toml"))}
    for manifest in sorted(KUBERNETES.glob("daemonset*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc and doc["kind"] == "ConfigMap":
                for key, text in doc["data"].items():
                    found[f"{manifest.name}: ConfigMap {doc['metadata']['name']}/{key}"] = text
    spec = yaml.safe_load((CHECKOUT / "deploy/cephadm/osd-watchdog.yaml").read_text())
    for name, text in spec["spec"]["files"].items():
        found[f"cephadm/osd-watchdog.yaml: {name}"] = text
    return found


CONFIGS = shipped_configs()


@pytest.mark.parametrize("where", sorted(CONFIGS))
def test_check_config_accepts_every_shipped_config(where, tmp_path):
    path = tmp_path / "osd-watchdog.toml"
    path.write_text(CONFIGS[where])
    out = run_cli("check-config", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{path}: ok"


def test_every_example_is_run_by_an_end_to_end_test():
    """An example nobody runs is a stand-in for nothing: each is named by a test that runs it."""
    e2e = "".join(p.read_text() for p in (CHECKOUT / "tests" / "e2e").glob("test_*.py"))
    for example in EXAMPLES.glob("*.toml"):
        assert f'"{example.name}"' in e2e, f"no end-to-end test runs examples/{example.name}"
