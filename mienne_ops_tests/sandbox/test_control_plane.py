"""The control plane of the sandbox server, independent of any one system fake."""

import httpx

from mienne_ops.sandbox.server import SandboxServer


def test_control_plane_serves_catalog_faults_and_reset(tmp_path):
    with SandboxServer(tmp_path / "world.db", modules=()) as server:
        catalog = httpx.get(f"{server.url}/_sandbox/catalog").json()
        assert len(catalog["skus"]) >= 300
        kits = [b for b in catalog["bundles"] if len(b["components"]) >= 2]
        assert kits and all(2 <= len(b["components"]) <= 4 for b in kits)
        assert any(c["quantity"] > 1 for b in kits for c in b["components"])
        assert {loc["code"] for loc in catalog["locations"]} == {"FR", "LA"}

        bad = httpx.post(f"{server.url}/_sandbox/faults", json={"nosuch": {"error_rate": 0.5}})
        assert bad.status_code == 400

        assert httpx.post(f"{server.url}/_sandbox/reset").json()["ok"] is True
        assert httpx.get(f"{server.url}/_sandbox/state").json() == {}
