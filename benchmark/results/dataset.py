"""The Hugging Face dataset folder and its Hub repo: checked parquet reads, table summaries, the folder check, repo-id and revision checks, Hub errors as one line."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any
from benchmark.results import schema
from benchmark.reporting.card import TableSummary
from benchmark.results.parquet import CONFIGS
from benchmark.errors import CommandError


_REVISION = re.compile(r"^(?!-)(?!.*(?:\.\.|//|@\{|\.lock$|/$|\.$))[A-Za-z0-9._/-]{1,255}$")


def check_repo_id(repo_id: str, what: str = "--repo-id") -> str:
    """Refuse a malformed dataset id ('ORG/NAME', as the Hub names repos) before any network."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise CommandError(f"{what} must be ORG/NAME, got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise CommandError(f"{what} {repo_id!r} is not a valid dataset id ({str(e).splitlines()[0]})") from None
    return repo_id


def check_revision(revision: str, what: str = "--revision") -> str:
    """Refuse a revision that is no branch, tag or commit name (git's ref rules: no '..', no leading '-', ...)."""
    if not isinstance(revision, str) or not _REVISION.match(revision):
        raise CommandError(f"{what} {revision!r} is not a valid branch, tag or commit name")
    return revision


def read_checked(path: Path, table: str) -> list[dict[str, Any]]:
    """Rows of a parquet file, after checking it against schema.arrow_schema(table): names, order, types, nulls."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise CommandError(f"{path}: not a readable parquet file ({str(e).splitlines()[0]})") from None
    expected = schema.arrow_schema(table)
    if data.schema.names != expected.names:
        missing = [n for n in expected.names if n not in data.schema.names]
        extra = [n for n in data.schema.names if n not in expected.names]
        what = f"missing {missing}" if missing else f"unexpected {extra}" if extra else "columns in another order"
        raise CommandError(f"{path}: columns do not match schema.py table {table!r} ({what})")
    for field in expected:
        actual = data.schema.field(field.name).type
        if actual != field.type:
            raise CommandError(f"{path}: column {field.name!r} is {actual}, schema.py table {table!r} says {field.type}")
    rows = data.to_pylist()
    for i, row in enumerate(rows):
        try:
            schema.validate_record(table, row, where=f"row {i}")
        except schema.SchemaError as e:
            raise CommandError(f"{path}: {e}") from None
    return rows


def table_summaries(folder: Path) -> list[TableSummary]:
    """Columns and row counts of the exported parquet files, in config order (what card.render takes)."""
    import pyarrow.parquet as pq

    out = []
    for name in CONFIGS:
        path = folder / "data" / f"{name}.parquet"
        out.append(TableSummary(name, tuple(pq.read_schema(path).names), pq.read_metadata(path).num_rows,
                                hashlib.sha256(path.read_bytes()).hexdigest()))
    return out


def check_folder(folder: Path) -> dict[str, int]:
    """Every config's parquet file valid, no unknown one, and a card whose YAML lists them and documents each column."""
    from huggingface_hub import DatasetCard

    if not (folder / "data").is_dir():
        raise CommandError(f"{folder}/data: no such folder (run `dvc repro` first)")
    found = {p.stem for p in (folder / "data").glob("*.parquet")}
    if found - set(CONFIGS):
        raise CommandError(f"{folder}/data: unknown table file {sorted(found - set(CONFIGS))[0]}.parquet")
    counts, columns = {}, {}
    for table in CONFIGS:
        path = folder / "data" / f"{table}.parquet"
        if not path.is_file():
            raise CommandError(f"{path}: missing (run `dvc repro` first)")
        rows = read_checked(path, table)
        counts[table], columns[table] = len(rows), schema.column_names(table)
    readme = folder / "README.md"
    if not readme.is_file():
        raise CommandError(f"{readme}: missing dataset card (the report stage writes it)")
    text = readme.read_text(encoding="utf-8")
    try:
        configs = DatasetCard(text).data.to_dict().get("configs") or []
    except Exception as e:  # yaml errors, non-mapping headers: DatasetCard raises several types
        raise CommandError(f"{readme}: invalid YAML header ({str(e).splitlines()[0]})") from None
    listed = {c.get("config_name"): c.get("data_files") for c in configs if isinstance(c, dict)}
    for table in CONFIGS:
        if table not in listed:
            raise CommandError(f"{readme}: YAML `configs` has no entry for {table!r}")
        files = listed[table]
        paths = [files] if isinstance(files, str) else [f.get("path") if isinstance(f, dict) else f for f in files or []]
        if f"data/{table}.parquet" not in paths:
            raise CommandError(f"{readme}: config {table!r} does not point at data/{table}.parquet")
        undocumented = [c for c in columns[table] if f"`{c}`" not in text]
        if undocumented:
            raise CommandError(f"{readme}: column {table}.{undocumented[0]} is not documented (regenerate the card)")
    return counts


def hub_error(e: Exception, endpoint: str, repo: str) -> CommandError:
    """One line for an exception raised while talking to the Hub about `repo` ('ORG/NAME[@revision]')."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    status = getattr(getattr(e, "response", None), "status_code", None)
    detail = getattr(e, "server_message", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
    detail = " ".join(str(detail).split())
    if isinstance(e, RepositoryNotFoundError):
        return CommandError(f"dataset {repo} not found on {endpoint} (or it is private and this token has no access)", 1)
    if isinstance(e, RevisionNotFoundError):
        return CommandError(f"dataset {repo}: revision not found on {endpoint} ({detail})", 1)
    if status == 401:
        return CommandError(f"the Hub at {endpoint} rejected the token (401): check HF_TOKEN or `hf auth login`", 1)
    if isinstance(e, HfHubHTTPError):
        return CommandError(f"the Hub at {endpoint} answered {status} for {repo}: {detail}", 1)
    return CommandError(f"cannot talk to the Hub at {endpoint}: {type(e).__name__}: {detail}", 1)


def scrub(text: str) -> str:
    """Remove the token from a message, should any library put it there."""
    from huggingface_hub import get_token

    token = os.environ.get("HF_TOKEN") or get_token() or ""
    return text.replace(token, "***") if len(token) >= 8 else text
