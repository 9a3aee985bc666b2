"""Tests of the .nav package archive (model_navigator.package.archive_*): real files, no mocks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple, Union

import numpy as np
import pytest

import helpers
from model_navigator.core.errors import PackageError, UserInputError
from model_navigator.core.status import FORMAT_VERSION, NavigatorStatus
from model_navigator.package.archive_extract import extract_archive
from model_navigator.package.archive_format import MANIFEST_FILE
from model_navigator.package.archive_validate import read_manifest, validate_archive
from model_navigator.package.archive_write import write_archive
from model_navigator.package.npz_check import check_npz_safe

REPO_ROOT = Path(__file__).resolve().parents[1]
ONNX_BYTES = b"\x08\x07\x12\x07pytorch" + bytes(range(256)) * 64


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def make_workspace(root: Path) -> Path:
    """A small but real-looking navigator workspace."""
    root.mkdir(parents=True)
    NavigatorStatus(model_name="m", framework="torch").save(root)
    (root / "navigator.log").write_text("log line\n")
    rng = np.random.default_rng(0)
    for folder in ("model_input", "model_output"):
        for sample_set in ("conversion", "correctness", "profiling"):
            d = root / folder / sample_set
            d.mkdir(parents=True)
            np.savez(d / "0.npz", x=rng.standard_normal((2, 3)).astype(np.float32))
    (root / "onnx").mkdir()
    (root / "onnx" / "model.onnx").write_bytes(ONNX_BYTES)
    (root / "onnx" / "config.yaml").write_text("format: onnx\n")
    (root / "onnx" / "reproduce_conversion.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "onnx" / "reproduce_conversion.sh", 0o755)
    return root


def tree(root: Path) -> Dict[str, bytes]:
    """Relative name -> bytes of every regular file under root."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def packaged_tree(root: Path) -> Dict[str, bytes]:
    """tree() of the workspace as a package restores it: its navigator.log as export.log (a loaded
    workdir's navigator.log is the log of what ran there)."""
    files = tree(root)
    if "navigator.log" in files:
        files["export.log"] = files.pop("navigator.log")
    return files


def snapshot(root: Path) -> Set[str]:
    """Every path (files, folders, links) under root."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def status_yaml(format_version: int = FORMAT_VERSION) -> bytes:
    return f"model_name: m\nframework: torch\nformat_version: {format_version}\n".encode()


STATUS_ENTRY = {"name": "status.yaml", "size": len(status_yaml()), "sha256": hashlib.sha256(status_yaml()).hexdigest()}

Entry = Tuple[Union[str, zipfile.ZipInfo], bytes]


def build_zip(
    path: Path,
    entries: List[Entry],
    status: Optional[bytes] = None,
    manifest: Optional[dict] = None,
    with_status: bool = True,
    with_manifest: bool = True,
    format_version: int = FORMAT_VERSION,
) -> Path:
    """Hand-build a package; by default the manifest matches the entries (so only the hostile part is wrong)."""
    all_entries: List[Entry] = []
    if with_status:
        all_entries.append(("status.yaml", status if status is not None else status_yaml(format_version)))
    all_entries.extend(entries)
    if manifest is None:
        manifest = {
            "manifest_version": 1,
            "format_version": format_version,
            "save_data": True,
            "entries": [
                {
                    "name": e.filename if isinstance(e, zipfile.ZipInfo) else e,
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
                for e, data in all_entries
            ],
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate-name test
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in all_entries:
                zf.writestr(name, data)
            if with_manifest:
                zf.writestr(MANIFEST_FILE, json.dumps(manifest))
    return path


def assert_refused(tmp_path: Path, package: Path, *fragments: str, target_name: str = "out") -> PackageError:
    """Validation and extraction both refuse, name the problem, and nothing is written anywhere."""
    before = snapshot(tmp_path)
    target = tmp_path / "nest" / target_name
    with pytest.raises(PackageError) as validated:
        validate_archive(package)
    with pytest.raises(PackageError) as extracted:
        extract_archive(package, target)
    for error in (validated.value, extracted.value):
        message = str(error).lower()
        for fragment in fragments:
            assert fragment.lower() in message, message
    assert snapshot(tmp_path) == before
    assert not target.exists()
    return extracted.value


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "navigator_workdir")


# ------------------------------------------------------------------------------------------------
# Writing and round trip
# ------------------------------------------------------------------------------------------------


def test_round_trip_preserves_every_byte(tmp_path: Path, workdir: Path) -> None:
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    with zipfile.ZipFile(package) as zf:
        names = zf.namelist()
        kinds = {i.filename: i.compress_type for i in zf.infolist()}
    assert names[0] == "status.yaml"
    assert MANIFEST_FILE in names
    assert kinds["onnx/model.onnx"] == zipfile.ZIP_STORED
    assert kinds["model_input/conversion/0.npz"] == zipfile.ZIP_DEFLATED

    manifest = validate_archive(package)
    assert manifest == read_manifest(package)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["save_data"] is True
    listed = {e["name"]: e for e in manifest["entries"]}
    assert listed["onnx/model.onnx"]["size"] == len(ONNX_BYTES)
    assert listed["onnx/model.onnx"]["sha256"] == hashlib.sha256(ONNX_BYTES).hexdigest()

    target = tmp_path / "restored"
    extract_archive(package, target)
    assert tree(target) == packaged_tree(workdir)
    assert os.access(target / "onnx" / "reproduce_conversion.sh", os.X_OK)
    assert NavigatorStatus.load(target).model_name == "m"
    assert not (target / MANIFEST_FILE).exists()
    assert not list(tmp_path.glob(".model.nav.*"))  # no temporary left


def test_extract_into_existing_empty_folder(tmp_path: Path, workdir: Path) -> None:
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    target = tmp_path / "empty"
    target.mkdir()
    extract_archive(package, target)
    assert tree(target) == packaged_tree(workdir)


def test_extract_refuses_non_empty_target(tmp_path: Path, workdir: Path) -> None:
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(UserInputError, match="not empty"):
        extract_archive(package, target)
    assert tree(target) == {"keep.txt": b"mine"}


def test_existing_path_refused_unless_override(tmp_path: Path, workdir: Path) -> None:
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    original = package.read_bytes()
    (workdir / "onnx" / "model.onnx").write_bytes(b"new weights")
    with pytest.raises(UserInputError) as error:
        write_archive(workdir, package)
    assert str(package) in str(error.value) and "override=True" in str(error.value)
    assert package.read_bytes() == original

    write_archive(workdir, package, override=True)
    target = tmp_path / "restored"
    extract_archive(package, target)
    assert (target / "onnx" / "model.onnx").read_bytes() == b"new weights"
    assert not list(tmp_path.glob(".model.nav.*"))


def test_save_data_false_leaves_samples_out(tmp_path: Path, workdir: Path) -> None:
    package = tmp_path / "model.nav"
    write_archive(workdir, package, save_data=False)
    with zipfile.ZipFile(package) as zf:
        names = zf.namelist()
    assert not [n for n in names if n.startswith(("model_input/", "model_output/"))]
    assert "onnx/model.onnx" in names
    assert read_manifest(package)["save_data"] is False
    target = tmp_path / "restored"
    extract_archive(package, target)
    assert not (target / "model_input").exists() and not (target / "model_output").exists()
    assert (target / "onnx" / "model.onnx").read_bytes() == ONNX_BYTES


def test_workdir_without_status_refused(tmp_path: Path) -> None:
    empty = tmp_path / "not_a_workspace"
    empty.mkdir()
    (empty / "file.txt").write_text("x")
    with pytest.raises(PackageError, match="status.yaml"):
        write_archive(empty, tmp_path / "model.nav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_workspace"]


def test_symlinks_in_workspace_are_not_followed(tmp_path: Path, workdir: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("top secret")
    os.symlink(secret / "key.txt", workdir / "onnx" / "leak.txt")
    os.symlink(secret, workdir / "leakdir")
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    with zipfile.ZipFile(package) as zf:
        names = zf.namelist()
        assert not any("leak" in n for n in names)
        assert all(b"top secret" not in zf.read(n) for n in names)


def test_package_saved_inside_workspace_excludes_itself(tmp_path: Path, workdir: Path) -> None:
    package = workdir / "model.nav"
    write_archive(workdir, package)
    write_archive(workdir, package, override=True)
    with zipfile.ZipFile(package) as zf:
        assert "model.nav" not in zf.namelist()


def test_highly_compressible_entries_still_pass_the_bomb_check(tmp_path: Path, workdir: Path) -> None:
    # A legitimate 4 MiB all-zero sample deflates ~1000:1; the writer must store it instead.
    np.savez(workdir / "model_input" / "profiling" / "1.npz", x=np.zeros(2**20, dtype=np.float32))
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    validate_archive(package)
    with zipfile.ZipFile(package) as zf:
        info = zf.getinfo("model_input/profiling/1.npz")
        assert info.compress_type == zipfile.ZIP_STORED
        assert zf.getinfo("model_input/profiling/0.npz").compress_type == zipfile.ZIP_DEFLATED


def test_dense_data_is_stored_whatever_its_name_and_text_deflated(tmp_path: Path, workdir: Path) -> None:
    # ONNX external data has no suffix: fp32 weights deflate to ~0.9 of their size, so they are stored;
    # a large text file of the same unknown kind still deflates.
    weights = np.random.default_rng(1).standard_normal(2**19).astype(np.float32) * 0.02  # 2 MiB
    weights.tofile(workdir / "onnx" / "layer.0.weight")
    text = "".join(f"step {i}: converted, correctness ok\n" for i in range(60_000)).encode()  # > 1 MiB
    (workdir / "onnx" / "trace").write_bytes(text)
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    with zipfile.ZipFile(package) as zf:
        stored = zf.getinfo("onnx/layer.0.weight")
        deflated = zf.getinfo("onnx/trace")
        assert stored.compress_type == zipfile.ZIP_STORED and stored.compress_size == weights.nbytes
        assert deflated.compress_type == zipfile.ZIP_DEFLATED and deflated.compress_size < len(text) / 4
    # a plain unzip reads both kinds and finds every CRC right
    tested = subprocess.run(["unzip", "-t", str(package)], capture_output=True, text=True)
    assert tested.returncode == 0 and "No errors detected" in tested.stdout, tested.stdout + tested.stderr
    target = tmp_path / "restored"
    extract_archive(package, target)
    assert tree(target) == packaged_tree(workdir)


def test_corrupt_stored_member_refused_and_rolled_back(tmp_path: Path, workdir: Path) -> None:
    # One byte of a stored member flipped in place (a bad disk, a broken copy): the extraction, which
    # checks the member while writing it, refuses it and removes what it had written before.
    (workdir / "zz_weights").write_bytes(np.random.default_rng(2).bytes(3 * 2**20))
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    with zipfile.ZipFile(package) as zf:
        info = zf.getinfo("zz_weights")
        assert info.compress_type == zipfile.ZIP_STORED
        offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 2**20
    data = bytearray(package.read_bytes())
    data[offset] ^= 0xFF
    package.write_bytes(bytes(data))
    assert_refused(tmp_path, package, "zz_weights")


def test_package_cut_inside_a_stored_member_is_truncated(tmp_path: Path, workdir: Path) -> None:
    (workdir / "onnx" / "model.onnx").write_bytes(np.random.default_rng(3).bytes(2 * 2**20))
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    with zipfile.ZipFile(package) as zf:
        info = zf.getinfo("onnx/model.onnx")
        assert info.compress_type == zipfile.ZIP_STORED
    truncated = tmp_path / "cut.nav"
    truncated.write_bytes(package.read_bytes()[: info.header_offset + 2**20])
    package.unlink()
    assert_refused(tmp_path, truncated, "cut.nav", "is truncated")


def test_package_written_by_earlier_code_still_validates_and_extracts(tmp_path: Path) -> None:
    # tests/fixtures/linear_v1.nav was written by the first release of the format: every entry
    # deflated, the .onnx stored.
    package = REPO_ROOT / "tests" / "fixtures" / "linear_v1.nav"
    with zipfile.ZipFile(package) as zf:
        kinds = {i.compress_type for i in zf.infolist()}
        expected = {
            ("export.log" if i.filename == "navigator.log" else i.filename): zf.read(i)
            for i in zf.infolist()
            if i.filename != MANIFEST_FILE
        }
    assert zipfile.ZIP_DEFLATED in kinds
    validate_archive(package)
    target = tmp_path / "old"
    extract_archive(package, target)
    assert tree(target) == expected


def test_interrupted_save_leaves_no_package_and_no_temporary(tmp_path: Path, workdir: Path) -> None:
    # 48 MiB of random hex digits deflate (to ~0.6 of their size, so they are not stored) at a few
    # tens of MB/s: seconds to compress, interrupted mid-write.
    with open(workdir / "onnx" / "weights.raw", "wb") as f:
        f.write(os.urandom(24 * 2**20).hex().encode())
    package = tmp_path / "model.nav"
    script = textwrap.dedent(
        f"""
        import sys
        from model_navigator.package.archive_write import write_archive
        print("start", flush=True)
        try:
            write_archive({str(workdir)!r}, {str(package)!r})
        except KeyboardInterrupt:
            sys.exit(3)
        sys.exit(0)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, env=helpers.repo_env()
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"start"
        deadline = time.monotonic() + 10
        while not list(tmp_path.glob(".model.nav.*.tmp")):
            assert time.monotonic() < deadline and proc.poll() is None, "writer never started its temporary"
            time.sleep(0.005)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not package.exists()
    assert not list(tmp_path.glob(".model.nav.*"))


# ------------------------------------------------------------------------------------------------
# Hostile and broken packages
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("../evil.txt", "outside the target"),
        ("onnx/../../evil.txt", "outside the target"),
        ("C:/evil.txt", "drive letter"),
        ("..\\evil.txt", "backslash"),
        ("onnx//model.onnx", "empty or '.'"),
    ],
)
def test_zip_slip_names_refused(tmp_path: Path, name: str, fragment: str) -> None:
    package = build_zip(tmp_path / "evil.nav", [(name, b"pwned")])
    assert_refused(tmp_path, package, repr(name), fragment)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "nest" / "evil.txt").exists()


def test_absolute_path_refused(tmp_path: Path) -> None:
    evil = tmp_path / "abs_evil.txt"
    package = build_zip(tmp_path / "evil.nav", [(str(evil), b"pwned"), ("/tmp/evil", b"pwned")])
    assert_refused(tmp_path, package, str(evil), "absolute path")
    assert not evil.exists()


def test_symlink_entry_refused(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("onnx/model.onnx")
    link.external_attr = 0o120777 << 16
    package = build_zip(tmp_path / "evil.nav", [(link, str(tmp_path / "secret").encode())])
    assert_refused(tmp_path, package, "onnx/model.onnx", "symbolic link")


def test_special_file_entry_refused(tmp_path: Path) -> None:
    fifo = zipfile.ZipInfo("onnx/pipe")
    fifo.external_attr = 0o010644 << 16
    package = build_zip(tmp_path / "evil.nav", [(fifo, b"")])
    assert_refused(tmp_path, package, "onnx/pipe", "special file")


def test_yaml_python_tag_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    for status in (
        f'!!python/object/apply:os.system ["echo pwned > {marker}"]\n'.encode(),
        f"model_name: m\nframework: torch\nformat_version: {FORMAT_VERSION}\n"
        f'config: !!python/object/apply:os.system ["echo pwned > {marker}"]\n'.encode(),
    ):
        package = build_zip(tmp_path / "evil.nav", [], status=status)
        assert_refused(tmp_path, package, "status.yaml", "not safe, plain yaml")
        assert not marker.exists()
        package.unlink()


def test_yaml_alias_bomb_refused(tmp_path: Path) -> None:
    status = status_yaml() + b"config:\n  a: &a [x, x, x]\n  b: [*a, *a, *a]\n"
    package = build_zip(tmp_path / "evil.nav", [], status=status)
    assert_refused(tmp_path, package, "status.yaml", "alias")


def test_newer_format_version_refused(tmp_path: Path) -> None:
    package = build_zip(tmp_path / "future.nav", [], format_version=FORMAT_VERSION + 997)
    assert_refused(tmp_path, package, "status.yaml", f"format_version {FORMAT_VERSION + 997}", "newer")


def test_object_array_npz_refused_and_extraction_rolled_back(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.array([{"a": 1}, None], dtype=object))  # pickled object array
    evil = buffer.getvalue()
    entries = [("onnx/model.onnx", ONNX_BYTES), ("model_input/conversion/0.npz", evil)]
    package = build_zip(tmp_path / "evil.nav", entries)
    with pytest.raises(
        PackageError,
        match=r"entry 'model_input/conversion/0.npz' refused: array 'x' cannot be "
        r"loaded without pickle",
    ):
        validate_archive(package)  # the one validation every reader runs checks the npz files too

    before = snapshot(tmp_path)
    for target, existed in ((tmp_path / "new_target", False), (tmp_path / "empty_target", True)):
        if existed:
            target.mkdir()
            before = snapshot(tmp_path)
        with pytest.raises(PackageError) as error:
            extract_archive(package, target)
        assert "0.npz" in str(error.value) and "pickle" in str(error.value)
        assert snapshot(tmp_path) == before  # partial extraction removed (and the created target)
        assert target.exists() == existed

    loose = tmp_path / "loose.npz"
    loose.write_bytes(evil)
    with pytest.raises(PackageError, match="loose.npz.*'x'"):
        check_npz_safe(loose)
    fine = tmp_path / "fine.npz"
    np.savez(fine, x=np.arange(3))
    check_npz_safe(fine)


def test_zip_bomb_refused(tmp_path: Path) -> None:
    size = 16 * 2**20  # deflates ~1000:1
    package = tmp_path / "bomb.nav"
    digest = hashlib.sha256()
    with zipfile.ZipFile(package, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("status.yaml", status_yaml())
        zeros = bytes(2**20)
        with zf.open("onnx/bomb.bin", "w") as f:
            for _ in range(size // len(zeros)):
                f.write(zeros)
                digest.update(zeros)
        manifest = {
            "manifest_version": 1,
            "format_version": FORMAT_VERSION,
            "save_data": True,
            "entries": [
                STATUS_ENTRY,
                {"name": "onnx/bomb.bin", "size": size, "sha256": digest.hexdigest()},
            ],
        }
        zf.writestr(MANIFEST_FILE, json.dumps(manifest))
    assert package.stat().st_size < 100_000
    assert_refused(tmp_path, package, "onnx/bomb.bin", "compression ratio", "zip bomb")
    with pytest.raises(PackageError, match="max_unpacked_bytes"):
        validate_archive(package, max_unpacked_bytes=8 * 2**20, max_ratio=1e9)
    assert validate_archive(package, max_ratio=1e9)["entries"][1]["name"] == "onnx/bomb.bin"


def test_tampered_entry_refused(tmp_path: Path, workdir: Path) -> None:
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    tampered = tmp_path / "tampered.nav"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "onnx/model.onnx":
                data = data[:-1] + bytes([data[-1] ^ 0xFF])  # same size, different bytes
            dst.writestr(info, data)
    assert_refused(tmp_path, tampered, "onnx/model.onnx", "sha256")


def test_manifest_size_mismatch_and_unlisted_entry_refused(tmp_path: Path) -> None:
    manifest = {
        "manifest_version": 1,
        "format_version": FORMAT_VERSION,
        "save_data": True,
        "entries": [
            STATUS_ENTRY,
            {"name": "onnx/model.onnx", "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()},
        ],
    }
    package = build_zip(tmp_path / "size.nav", [("onnx/model.onnx", ONNX_BYTES)], manifest=manifest)
    assert_refused(tmp_path, package, "onnx/model.onnx", "does not match")
    package.unlink()
    manifest["entries"].pop()
    package = build_zip(tmp_path / "extra.nav", [("onnx/model.onnx", ONNX_BYTES)], manifest=manifest)
    assert_refused(tmp_path, package, "onnx/model.onnx", "not listed")


def test_truncated_zip_refused(tmp_path: Path, workdir: Path) -> None:
    package = tmp_path / "model.nav"
    write_archive(workdir, package)
    data = package.read_bytes()
    package.unlink()
    for keep in (len(data) // 2, len(data) - 10):
        truncated = tmp_path / "truncated.nav"
        truncated.write_bytes(data[:keep])
        assert_refused(tmp_path, truncated, "truncated.nav", "is truncated", "directory at its end is missing")
        truncated.unlink()


def test_not_a_zip_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.nav"
    bogus.write_text("model_name: m\nthis is not a zip\n")
    assert_refused(tmp_path, bogus, "bogus.nav", "not a zip file")
    with pytest.raises(PackageError, match="not a zip"):
        read_manifest(bogus)
    with pytest.raises(PackageError, match="does not exist"):
        validate_archive(tmp_path / "missing.nav")


def test_duplicate_entry_names_refused(tmp_path: Path) -> None:
    entries = [("onnx/model.onnx", ONNX_BYTES), ("onnx/model.onnx", b"second copy")]
    manifest = {
        "manifest_version": 1,
        "format_version": FORMAT_VERSION,
        "save_data": True,
        "entries": [
            STATUS_ENTRY,
            {"name": "onnx/model.onnx", "size": len(ONNX_BYTES), "sha256": hashlib.sha256(ONNX_BYTES).hexdigest()},
        ],
    }
    package = build_zip(tmp_path / "dup.nav", entries, manifest=manifest)
    assert_refused(tmp_path, package, "onnx/model.onnx", "duplicate entry")
    package.unlink()
    package = build_zip(tmp_path / "case.nav", [("onnx/Model.onnx", b"a"), ("onnx/model.onnx", b"b")])
    assert_refused(tmp_path, package, "onnx/model.onnx", "letter case")
    package.unlink()
    package = build_zip(tmp_path / "filedir.nav", [("onnx", b"a"), ("onnx/model.onnx", b"b")])
    assert_refused(tmp_path, package, "'onnx'", "both as a file and as a folder")


@pytest.mark.parametrize("missing", ["status", "manifest"])
def test_missing_status_or_manifest_refused(tmp_path: Path, missing: str) -> None:
    package = build_zip(
        tmp_path / "partial.nav",
        [("onnx/model.onnx", ONNX_BYTES)],
        with_status=missing != "status",
        with_manifest=missing != "manifest",
    )
    name = "status.yaml" if missing == "status" else MANIFEST_FILE
    assert_refused(tmp_path, package, name, "missing")
