"""`retouch review`: one self-contained before/after HTML page for a folder or prefix of enhanced photos.

The page is static (vanilla JS and CSS from `worker/templates/review.html`, images inlined as data URIs or
written beside it), so it opens from `file://` with the network off and from an S3 static site.
Reading (`load_local`, `load_s3`) builds a `Review` model; `render` turns the model into HTML.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Literal

from worker.storage import ObjectStore

Outcome = Literal["enhanced", "kept", "failed"]
# An original or output larger than this is not fetched for the page (a review page is for looking, not
# for archiving); the card then says so.
MAX_IMAGE_BYTES = 50 * 1024 * 1024


class ReviewError(ValueError):
    """SOURCE cannot be reviewed: not a folder or s3:// URI, or nothing in it."""


@dataclass(frozen=True)
class Image:
    name: str  # file name, used when images are written beside the page
    data: bytes
    content_type: str


@dataclass(frozen=True)
class Card:
    """One photo that has a manifest: its before and after, and what the manifest says."""

    name: str
    outcome: Outcome
    before: Image | None
    after: Image | None
    manifest: dict
    missing: tuple[str, ...] = ()  # why an image is absent ("original not found: ...")


@dataclass(frozen=True)
class Failure:
    name: str
    reason: str
    message: str


@dataclass
class Review:
    title: str
    cards: list[Card] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {"enhanced": 0, "kept": 0, "failed": len(self.failures)}
        for card in self.cards:
            counts[card.outcome] += 1
        return counts

    def cost_totals(self) -> dict:
        """CPU and GPU seconds over every card, and the priced total when every manifest has a price."""
        costs = [card.manifest.get("cost") or {} for card in self.cards]
        prices = [c.get("price") for c in costs]
        return {
            "cpu_seconds": sum(c.get("cpu_seconds", 0.0) for c in costs),
            "gpu_seconds": sum(c.get("gpu_seconds", 0.0) for c in costs),
            "price": sum(p["total"] for p in prices) if prices and all(prices) else None,  # type: ignore[index]
        }


def outcome_of(manifest: dict) -> Outcome:
    """`kept` when no engine changed the pixels: the planner chose none, or the quality gate kept the photo
    as it was after each engine that ran (`applied` false: the engine ran, its output was not used)."""
    return "enhanced" if any(run.get("applied", True) for run in manifest.get("engines") or []) else "kept"
PLANNED_OUT = {"already_large", "already_clean", "output_limit"}


def _content_type(name: str, declared: str | None = None) -> str:
    return declared or mimetypes.guess_type(name)[0] or "application/octet-stream"


# -- reading --------------------------------------------------------------------------------------------


def load_local(folder: Path) -> Review:
    """A folder written by `retouch enhance`: `<stem>.manifest.json` beside each output, `<stem>.failed.json`
    per failure; originals are read from the manifest's source path."""
    if not folder.is_dir():
        raise ReviewError(f"{folder} is not a folder")
    review = Review(title=str(folder.resolve()))
    for path in sorted(folder.glob("*.manifest.json")):
        manifest = json.loads(path.read_text())
        stem = path.name.removesuffix(".manifest.json")
        missing = []
        before = _read_local(Path(manifest["source"].get("path", "")), missing, "original")
        after = _read_local(folder / manifest["output"]["path"], missing, "output",
                            manifest["output"].get("content_type"))
        review.cards.append(Card(stem, outcome_of(manifest), before, after, manifest, tuple(missing)))
    for path in sorted(folder.glob("*.failed.json")):
        record = json.loads(path.read_text())
        name = Path(record.get("source", {}).get("path", path.name.removesuffix(".failed.json"))).name
        review.failures.append(Failure(name, record.get("reason", "unknown"), record.get("message", "")))
    if not review.cards and not review.failures:
        raise ReviewError(f"{folder} holds no manifests or failure records (write one with `retouch enhance`)")
    return review


def _read_local(path: Path, missing: list[str], what: str, content_type: str | None = None) -> Image | None:
    if not path.is_file():
        missing.append(f"{what} not found: {path}")
        return None
    if path.stat().st_size > MAX_IMAGE_BYTES:
        missing.append(f"{what} over {MAX_IMAGE_BYTES} bytes: {path}")
        return None
    return Image(path.name, path.read_bytes(), _content_type(path.name, content_type))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/prefix/` to (bucket, prefix)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ReviewError(f"{uri!r} is not an s3://bucket/prefix/ URI")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


def load_s3(uri: str, store: ObjectStore) -> Review:
    """An output prefix: its `*.manifest.json` (originals fetched from each manifest's source bucket and key)
    and the failure records under `<prefix>failed/`."""
    bucket, prefix = parse_s3_uri(uri)
    review = Review(title=uri)
    failed_prefix = f"{prefix}failed/"
    keys = sorted(store.list_keys(bucket, prefix))
    for key in keys:
        if key.startswith(failed_prefix) and key.endswith(".json"):
            record = json.loads(store.get(bucket, key, max_bytes=MAX_IMAGE_BYTES).data)
            source = record.get("source", {})
            name = str(source.get("key") or key.removeprefix(failed_prefix).removesuffix(".json"))
            review.failures.append(Failure(name, record.get("reason", "unknown"), record.get("message", "")))
        elif key.endswith(".manifest.json"):
            manifest = json.loads(store.get(bucket, key, max_bytes=MAX_IMAGE_BYTES).data)
            source, output = manifest["source"], manifest["output"]
            missing: list[str] = []
            before = _read_s3(store, source["bucket"], source["key"], missing, "original")
            after = _read_s3(store, output["bucket"], output["key"], missing, "output", output.get("content_type"))
            review.cards.append(Card(source["key"], outcome_of(manifest), before, after, manifest, tuple(missing)))
    if not review.cards and not review.failures:
        raise ReviewError(f"{uri} holds no manifests or failure records")
    return review


def _read_s3(store: ObjectStore, bucket: str, key: str, missing: list[str], what: str,
             content_type: str | None = None) -> Image | None:
    from worker.errors import RetouchError

    try:
        stored = store.get(bucket, key, max_bytes=MAX_IMAGE_BYTES)
    except RetouchError as error:  # gone since (object_not_found) or too large (over_limit)
        missing.append(f"{what} s3://{bucket}/{key}: {error.reason}")
        return None
    name = key.replace("/", "_")
    return Image(name, stored.data, _content_type(key, content_type or stored.info.content_type))


def load(source: str, store_factory=None) -> Review:
    """Dispatch on SOURCE: `s3://...` (the store from `store_factory()`) or a local folder."""
    if source.startswith("s3://"):
        if store_factory is None:
            raise ReviewError("an s3:// SOURCE needs object storage settings")
        return load_s3(source, store_factory())
    if "://" in source:
        raise ReviewError(f"{source!r} is neither a local folder nor an s3:// URI")
    path = Path(source)
    if not path.exists():
        raise ReviewError(f"{source} does not exist")
    return load_local(path)


# -- rendering ------------------------------------------------------------------------------------------


def render(review: Review, image_url) -> str:
    """The page's HTML. `image_url(image) -> str` says where each image is (a data URI or a file beside)."""
    template = files("worker").joinpath("templates/review.html").read_text()
    counts = review.counts()
    totals = review.cost_totals()
    summary = (f"{len(review.cards) + len(review.failures)} photos: {counts['enhanced']} enhanced, "
               f"{counts['kept']} kept, {counts['failed']} failed. Engines used "
               f"{totals['cpu_seconds']:.2f} CPU-seconds" + (f" and {totals['gpu_seconds']:.2f} GPU-seconds"
                                                              if totals["gpu_seconds"] else "")
               + (f", priced {_money(totals['price'])}" if totals["price"] is not None else "") + ".")
    cards = "\n".join(_card(card, image_url) for card in review.cards)
    failures = "\n".join(
        f'<li class="failure" data-outcome="failed"><strong>{_e(f.name)}</strong> '
        f'<code>{_e(f.reason)}</code> {_e(f.message)}</li>' for f in review.failures
    ) or '<li class="none">no failures</li>'
    return (template.replace("__TITLE__", _e(review.title)).replace("<!--SUMMARY-->", _e(summary))
            .replace("<!--COUNTS-->", json.dumps(counts)).replace("<!--CARDS-->", cards)
            .replace("<!--FAILURES-->", failures))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _money(total: float) -> str:
    return f"${total:.6f}" if total < 0.01 else f"${total:.4f}"


def _card(card: Card, image_url) -> str:
    m = card.manifest
    source, output = m.get("source", {}), m.get("output", {})
    width, height = output.get("width") or 1, output.get("height") or 1
    if card.before is not None and card.after is not None:
        # Both layers fill the same box at the output's size: the before is upscaled by CSS to match.
        compare = (
            f'<div class="viewport"><div class="compare" style="--pos:50%;aspect-ratio:{width}/{height};'
            f'--natural-width:{width}px">'
            f'<img class="after" alt="after: {_e(card.name)}" src="{image_url(card.after)}">'
            f'<img class="before" alt="before: {_e(card.name)}" src="{image_url(card.before)}">'
            f'<div class="divider"></div></div></div>'
            f'<div class="controls"><input class="slider" type="range" min="0" max="100" value="50" '
            f'aria-label="before/after position"><button class="zoom" type="button" aria-pressed="false">'
            f'100 %</button><span class="legend">before | after</span></div>'
        )
    else:
        shown = card.after or card.before
        compare = (f'<div class="viewport"><img class="single" alt="{_e(card.name)}" src="{image_url(shown)}">'
                   f'</div>' if shown is not None else '<div class="viewport empty">no image</div>')
    missing = "".join(f'<p class="missing">{_e(line)}</p>' for line in card.missing)
    return (
        f'<article class="card" data-outcome="{card.outcome}">'
        f'<header><h2>{_e(card.name)}</h2><span class="badge {card.outcome}">{card.outcome}</span></header>'
        f"{compare}{missing}"
        f'<dl class="facts">'
        f'<dt>size</dt><dd>{_size(source)} &rarr; {_size(output)}</dd>'
        f'<dt>cost</dt><dd>{_cost(m.get("cost"))}</dd>'
        f'<dt>analysis</dt><dd>{_pairs(m.get("analysis") or {})}</dd>'
        f"{_background(m.get('background'))}"
        f"</dl>"
        f"<h3>Decisions</h3>{_list(m.get('decisions') or [], 'no decisions recorded')}"
        f"<h3>Engines</h3>{_engines(m.get('engines') or [])}"
        f"<h3>Quality gate</h3>{_gate(m.get('gate') or [])}"
        f"</article>"
    )


def _background(found: dict | None) -> str:
    """The background step's decision (absent when the mode was keep); a cut-out shows over the viewport's
    checkerboard, so transparency is visible."""
    if not found:
        return ""
    mode, applied = found.get("mode", "?"), bool(found.get("applied"))
    text = f"{_e(mode)}: {'applied' if applied else 'kept as it was'} <code>{_e(found.get('reason', ''))}</code>"
    for key in ("coverage", "confidence"):
        if isinstance(found.get(key), int | float):
            text += f", {key} {found[key]:.2f}"
    if found.get("products", 1) != 1:
        text += f", {_e(found['products'])} products"
    if found.get("touches"):
        text += f", touches {_e(', '.join(found['touches']))}"
    if mode == "transparent" and applied:
        text += " (transparent where the checkerboard shows)"
    return f'<dt>background</dt><dd class="background {"applied" if applied else "kept"}">{text}</dd>'


def _size(part: dict) -> str:
    kib = (part.get("bytes") or 0) / 1024
    return f"{part.get('width', '?')}&times;{part.get('height', '?')} px, {kib:.0f} KiB"


def _cost(cost: dict | None) -> str:
    if not cost:
        return "not recorded"
    text = f"{cost.get('cpu_seconds', 0):.2f} CPU-s"
    if cost.get("gpu_seconds"):
        text += f", {cost['gpu_seconds']:.3f} GPU-s"
    price = cost.get("price")
    if price:
        rates = ", ".join(f"{k.split('_')[0].upper()} ${v}/h" for k, v in price.items()
                          if k in ("cpu_hour", "gpu_hour") and v is not None)
        text += f" = {_money(price['total'])} {_e(price.get('currency', 'USD'))} at {rates}"
    else:
        text += " (no price: set RETOUCH_PRICE_CPU_HOUR)"
    return text


def _pairs(values: dict) -> str:
    """Every key, whatever the analysis grows: numbers rounded, the rest as written."""
    def show(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else _e(value)

    return ", ".join(f"{_e(key)} {show(value)}" for key, value in values.items()) or "none"


def _list(items: Iterable[str], empty: str) -> str:
    lines = "".join(f"<li>{_e(item)}</li>" for item in items)
    return f"<ul>{lines}</ul>" if lines else f'<p class="none">{_e(empty)}</p>'


def _engines(runs: list[dict]) -> str:
    if not runs:
        return '<p class="none">no engine ran</p>'
    rows = "".join(
        f"<tr><td>{_e(r.get('engine'))}</td><td>{_e(r.get('backend'))}/{_e(r.get('device'))}</td>"
        f"<td>{_e(r.get('precision', ''))}</td><td>{r.get('seconds', 0):.2f}</td>"
        f"<td>{r.get('cpu_seconds', 0):.2f}</td><td>{_gpu(r.get('gpu_seconds'))}</td>"
        f"<td>{_e(r.get('tiles', ''))}</td></tr>" for r in runs
    )
    return ("<table><thead><tr><th>engine</th><th>backend</th><th>precision</th><th>wall s</th><th>CPU s</th>"
            f"<th>GPU s</th><th>tiles</th></tr></thead><tbody>{rows}</tbody></table>")


def _gpu(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}"


def _gate(verdicts: list[dict]) -> str:
    if not verdicts:
        return '<p class="none">no gate verdicts</p>'
    items = "".join(
        f'<li class="verdict {_e(v.get("verdict", ""))}"><strong>{_e(v.get("step", "?"))}</strong>: '
        f'{_e(v.get("verdict", "?"))} <code>{_e(v.get("reason", ""))}</code> {_e(v.get("detail", ""))}</li>'
        for v in verdicts
    )
    return f"<ul>{items}</ul>"


# -- writing --------------------------------------------------------------------------------------------


def data_uri(image: Image) -> str:
    return f"data:{image.content_type};base64,{base64.b64encode(image.data).decode()}"


def write_page(review: Review, page: Path, *, images_beside: bool = False) -> Path:
    """Write the page; with `images_beside`, images go to `<page stem>_files/` instead of data URIs."""
    page.parent.mkdir(parents=True, exist_ok=True)
    if not images_beside:
        page.write_text(render(review, data_uri))
        return page
    folder = page.parent / f"{page.stem}_files"
    folder.mkdir(exist_ok=True)

    def beside(image: Image) -> str:
        (folder / image.name).write_bytes(image.data)
        return f"{folder.name}/{image.name}"

    # Before and after of one photo may share a file name: give each card's images their own prefix.
    numbered = Review(review.title, [
        Card(card.name, card.outcome,
             _renamed(card.before, f"{index:03d}-before-"), _renamed(card.after, f"{index:03d}-after-"),
             card.manifest, card.missing)
        for index, card in enumerate(review.cards)
    ], review.failures)
    page.write_text(render(numbered, beside))
    return page


def _renamed(image: Image | None, prefix: str) -> Image | None:
    return None if image is None else Image(prefix + image.name, image.data, image.content_type)


def write_review_page(folder: Path, page: Path) -> Path:
    """The page for a folder written by `retouch enhance`."""
    return write_page(load_local(folder), page)
