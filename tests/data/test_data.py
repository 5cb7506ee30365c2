from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlworkshop.data import locate
from dlworkshop.data.fetch import check_file, fetch, verify, write_url_map
from dlworkshop.data.lock import _set_field, lock
from dlworkshop.data.registry import load_registry
from dlworkshop.data.stage import plan, stage, write_plan
from dlworkshop.errors import DataError
from dlworkshop_learner.data_links import CacheRoots, link, read_plan

REGISTRY_TEXT = """\
version: 1
datasets:
  tiny:
    title: A tiny dataset
    licence: CC0-1.0
    homepage: https://example.org
    files:
      - name: a.csv
        urls:
          - https://example.org/a.csv?download=1
        size: null
        sha256: null   # recorded by lock
        stage:
          - {cache: seaborn, path: a.csv}
          - {cache: keras, path: datasets/a.csv}
"""


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    registry = tmp_path / "datasets.yaml"
    registry.write_text(REGISTRY_TEXT)
    mirror = tmp_path / "mirror" / "tiny"
    mirror.mkdir(parents=True)
    (mirror / "a.csv").write_text("x,y\n1,2\n")
    return registry, mirror.parent


def test_the_shipped_registry_names_every_dataset_of_the_lesson() -> None:
    registry = load_registry()
    assert set(registry.datasets) >= {
        "penguins",
        "weather-light",
        "weather",
        "cifar10",
        "dollar-street-10",
        "densenet121-imagenet-notop",
    }
    for _, item in registry.files():
        assert item.urls
    densenet = registry.datasets["densenet121-imagenet-notop"].files[0]
    assert densenet.known_hash == "md5:30ee3e1110167f948a6b9946edeeb738"
    assert (
        registry.datasets["cifar10"].files[0].stage[0].path == "datasets/cifar-10-batches-py-target_archive"
    )


def test_unknown_dataset_is_a_clear_error(tiny: tuple[Path, Path]) -> None:
    with pytest.raises(DataError, match="unknown dataset"):
        load_registry(tiny[0]).select(["nope"])


def test_fetch_from_a_folder_mirror_then_stage_links_without_overwriting(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    registry_file, mirror = tiny
    registry = load_registry(registry_file)
    dest = tmp_path / "data"
    fetch(registry, dest, mirror=str(mirror))
    assert all(check.ok for check in verify(registry, dest))
    assert json.loads((dest / "urls.json").read_text()) == {
        "https://example.org/a.csv?download=1": "tiny/a.csv"
    }

    roots = CacheRoots(seaborn=tmp_path / "seaborn", keras=tmp_path / "keras", work=None)
    (roots.keras / "datasets").mkdir(parents=True)
    (roots.keras / "datasets" / "a.csv").write_text("the learner's own file")
    actions = {result.target: result.action for result in stage(registry, dest, roots)}
    assert actions[roots.seaborn / "a.csv"] == "linked"
    assert actions[roots.keras / "datasets" / "a.csv"] == "skipped"
    assert (roots.keras / "datasets" / "a.csv").read_text() == "the learner's own file"
    again = {result.target: result.action for result in stage(registry, dest, roots)}
    assert again[roots.seaborn / "a.csv"] == "kept"


def test_lock_records_sha256_and_size_and_keeps_comments(tiny: tuple[Path, Path]) -> None:
    registry_file, mirror = tiny
    recorded = lock(load_registry(registry_file), registry_file, mirror=str(mirror))
    assert recorded[0][0] == "tiny/a.csv" and recorded[0][2] == 8
    text = registry_file.read_text()
    assert f"sha256: {recorded[0][1]}" in text
    assert "size: 8" in text
    assert "# recorded by lock" not in text or "title: A tiny dataset" in text
    assert load_registry(registry_file).datasets["tiny"].files[0].sha256 == recorded[0][1]


def test_set_field_only_touches_the_named_file() -> None:
    text = "files:\n  - name: a\n    sha256: null\n  - name: b\n    sha256: null\n"
    assert (
        _set_field(text, "b", "sha256", "f" * 64)
        == f"files:\n  - name: a\n    sha256: null\n  - name: b\n    sha256: {'f' * 64}\n"
    )


def test_check_file_names_expected_and_got(tmp_path: Path) -> None:
    registry = load_registry()
    dataset, item = next((d, i) for d, i in registry.files() if d == "penguins")
    (tmp_path / dataset).mkdir()
    (tmp_path / dataset / item.name).write_text("bad")
    check = check_file(dataset, item, tmp_path)
    assert check.problem.startswith(f"sha256 mismatch: expected {item.sha256}, got ")


def test_locate_points_at_the_data_root_and_says_how_to_fix_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLWORKSHOP_DATA", str(tmp_path))
    (tmp_path / "penguins").mkdir()
    (tmp_path / "penguins" / "penguins.csv").write_text("x")
    assert locate("penguins", "penguins.csv") == tmp_path / "penguins" / "penguins.csv"
    with pytest.raises(FileNotFoundError, match="dlworkshop data fetch"):
        locate("cifar10")


def test_url_map_lists_only_fetched_files(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    registry = load_registry(tiny[0])
    assert json.loads(write_url_map(registry, tmp_path).read_text()) == {}


def test_a_written_plan_links_the_same_as_the_registry(tmp_path: Path) -> None:
    """The image writes the plan at build time; a server's start links from it alone."""
    registry = load_registry()
    (tmp_path / "data").mkdir()
    write_plan(registry, tmp_path / "data")
    assert read_plan(tmp_path / "data") == plan(registry, tmp_path / "data")
    with pytest.raises(FileNotFoundError, match=r"stage-plan\.json"):
        read_plan(tmp_path / "nowhere")
    roots = CacheRoots(seaborn=tmp_path / "sns", keras=tmp_path / "keras", work=None)
    results = link(read_plan(tmp_path / "data"), roots)
    assert results and {r.action for r in results} == {"missing"}  # no copies fetched here


def test_an_https_mirror_signed_by_a_private_ca_is_trusted_with_its_bundle_only(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """What `--ca-bundle` gives a fetch behind a TLS-intercepting proxy: verification kept, the CA added."""
    import functools
    import http.server
    import ssl
    import threading

    import trustme

    registry_file, mirror = tiny
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(mirror))
    )
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(DataError, match="cannot be reached"):
            fetch(load_registry(registry_file), tmp_path / "refused", mirror=url)
        fetched = fetch(load_registry(registry_file), tmp_path / "data", mirror=url, ca_bundle=bundle)
    finally:
        server.shutdown()
        server.server_close()
    assert [path.read_text() for path in fetched] == ["x,y\n1,2\n"]
