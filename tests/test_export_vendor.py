"""export from a vendor through the emulator: Nexconn cannot list users, so the user
names the ones without a hosted profile (`--uids FILE`)."""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path

import httpx
import yaml
from emulator_process import EmulatorProcess
from test_apply import CREDENTIALS, nexconn_manifest
from test_cli import chatroster


def register(emulator: EmulatorProcess, uid: str, name: str) -> None:
    """A user created outside chatroster: no hosted profile, so no way to list it."""
    nonce, stamp = str(secrets.randbelow(10**17)), str(int(time.time() * 1000))
    signature = hashlib.sha1((CREDENTIALS["NEXCONN_APP_SECRET"] + nonce + stamp).encode()).hexdigest()
    headers = {
        "App-Key": CREDENTIALS["NEXCONN_APP_KEY"],
        "Nonce": nonce,
        "Timestamp": stamp,
        "Signature": signature,
    }
    answer = httpx.post(
        f"{emulator.base_url}/v4/auth/access-token/issue", json={"userId": uid, "name": name}, headers=headers
    )
    assert answer.json()["code"] == 0, answer.text


def test_nexconn_export_reads_the_uids_the_user_names(tmp_path: Path, emulator: EmulatorProcess) -> None:
    manifest = tmp_path / "team.yaml"
    nexconn_manifest(manifest, emulator, {"alice": {"name": "Alice", "tags": ["staff"]}})
    assert chatroster("apply", str(manifest), "--yes", cwd=tmp_path, env=CREDENTIALS).returncode == 0
    register(emulator, "legacy1", "Old Timer")
    plain = chatroster("export", str(manifest), cwd=tmp_path, env=CREDENTIALS)
    assert plain.returncode == 0, plain.stderr
    assert set(yaml.safe_load(plain.stdout)["users"]) == {"alice"}
    listed = tmp_path / "uids.txt"
    listed.write_text("# users from the old system\nlegacy1\n\n")
    out = tmp_path / "all.yaml"
    named = chatroster(
        "export", str(manifest), "--uids", str(listed), "--out", str(out), cwd=tmp_path, env=CREDENTIALS
    )
    assert named.returncode == 0, named.stderr
    exported = yaml.safe_load(out.read_text())
    assert exported["users"]["legacy1"]["name"] == "Old Timer"
    assert exported["provider"]["app_key"] == "${NEXCONN_APP_KEY}"
    assert CREDENTIALS["NEXCONN_APP_SECRET"] not in out.read_text()
    again = chatroster("plan", str(out), "--format", "json", cwd=tmp_path, env=CREDENTIALS)
    assert again.returncode == 0, again.stderr
    assert [(c["action"], c["uid"]) for c in yaml.safe_load(again.stdout)["changes"]] == [
        ("adopt_user", "legacy1")
    ]
