"""``voxspec verify``: rebuild figures in a temporary folder and compare with their manifests.

A figure reproduces when its spec, sources and package versions are those its manifest
recorded and every recorded output, rebuilt now, has the recorded bytes, as has the file
in the output folder. Otherwise one line says what changed, in the order that explains
the most: the spec (which keys), a source (which one), a package version (old -> new),
or nothing but the pixels; then pixel statistics of the raster output and the path of
a difference image ``<out>/<name>.diff.png`` showing where the pixels moved.

The outputs and manifests in the output folder are never written: only difference
images are (and a stale one is removed once its figure reproduces again).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from voxspec import manifest
from voxspec.errors import Problem, UserError

RASTER_FORMATS = ("png", "tiff")  # the formats whose pixels can be compared
FIGURE_FORMATS = ("png", "pdf", "svg", "tiff")
MAX_LISTED = 4  # spec keys or packages named in one line before "and N more"


@dataclass
class PixelReport:
    """How two renderings of one raster output differ."""

    file: str
    share_changed: float  # of pixels with any channel different
    largest: int  # largest difference of one channel, 0-255
    ssim: float | None  # structural similarity (1 = identical); None when too small
    sizes: tuple[tuple[int, int], tuple[int, int]]  # (width, height) before and after

    def text(self) -> str:
        share = self.share_changed
        shown = "<0.01%" if 0 < share < 0.0001 else f"{share:.2%}"  # one pixel is not none
        parts = [f"{shown} of pixels changed"]
        parts.append(f"largest difference {self.largest}/255")
        if self.ssim is not None:
            parts.append(f"SSIM {self.ssim:.4f}")
        (w0, h0), (w1, h1) = self.sizes
        if (w0, h0) != (w1, h1):
            parts.append(f"size {w0}x{h0} -> {w1}x{h1} px")
        return f"pixels of {self.file}: " + ", ".join(parts)


@dataclass
class Verdict:
    """What verify found for one figure."""

    name: str
    reproduces: bool
    causes: list[str] = field(default_factory=list)
    pixels: PixelReport | None = None
    diff_image: Path | None = None
    files: list[str] = field(default_factory=list)
    never_built: bool = False

    def line(self) -> str:
        from voxspec.spec import display_path

        if self.reproduces:
            return f"{self.name}: reproduces ({', '.join(self.files)})"
        if self.never_built:
            return f"{self.name}: {'; '.join(self.causes)}"
        parts = [f"{self.name}: changed: {'; '.join(self.causes)}"]
        if self.pixels is not None:
            parts.append(self.pixels.text())
        if self.diff_image is not None:
            parts.append(f"difference image {display_path(self.diff_image)}")
        return " | ".join(parts)


def verify(
    paths=None, out: str | Path = "outputs", quiet: bool = False
) -> tuple[list[Verdict], list[Problem]]:
    """Verify every figure of ``paths`` (default: ``figspecs/``) against ``out``.

    Returns a verdict for each valid spec, and the problems of the invalid ones (or of
    figures that could not be rebuilt, such as a source that is gone).
    """
    from voxspec.build import VolumeStore, find_specs, load_specs

    out_dir = Path(out)
    docs, problems = load_specs(find_specs(paths))
    verdicts = []
    store = VolumeStore(progress=False)
    with tempfile.TemporaryDirectory(prefix="voxspec-verify-") as scratch:
        for doc in docs:
            try:
                verdicts.append(verify_figure(doc, out_dir, Path(scratch), store))
            except UserError as error:
                problems += error.problems
    return verdicts, problems


def verify_figure(doc, out_dir: Path, scratch: Path, store=None) -> Verdict:
    """Rebuild ``doc`` into ``scratch`` and compare with its manifest in ``out_dir``."""
    from voxspec.build import build_figure
    from voxspec.spec import display_path

    name = doc.name
    recorded = manifest.read(out_dir, name)
    if recorded is None:
        shown = display_path(manifest.manifest_path(out_dir, name))
        return Verdict(name, False, [f"no manifest {shown}: build it first"], never_built=True)
    recorded_outputs = recorded.get("outputs") or {}
    formats = [f for f in FIGURE_FORMATS if f"{name}.{f}" in recorded_outputs]
    build_figure(doc, scratch, formats or None, store, force=True)
    fresh = manifest.read(scratch, name) or {}

    causes = input_changes(recorded, fresh)
    output_causes, changed_files = output_changes(recorded_outputs, fresh, out_dir, scratch)
    if not causes and output_causes:
        causes = [
            "nothing but the pixels (same spec, sources and versions): " + "; ".join(output_causes)
        ]
    elif causes and not output_causes:
        causes.append("the outputs are still byte-identical")
    diff_image = out_dir / f"{name}.diff.png"
    if not causes:
        diff_image.unlink(missing_ok=True)  # it showed a difference that is gone
        return Verdict(name, True, files=sorted(recorded_outputs))

    pixels = None
    raster = next((f for f in changed_files if f.rsplit(".", 1)[-1] in RASTER_FORMATS), None)
    raster = raster or next(
        (f for f in sorted(recorded_outputs) if f.rsplit(".", 1)[-1] in RASTER_FORMATS), None
    )
    written = None
    if raster and (out_dir / raster).is_file() and (scratch / raster).is_file():
        pixels, image = compare_pixels(out_dir / raster, scratch / raster)
        from voxspec.output import write_atomic

        write_atomic(diff_image, image)
        written = diff_image
    else:
        causes.append("no png or tiff output on both sides to compare pixels")
    return Verdict(name, False, causes, pixels, written)


# ------------------------------------------------------------------ causes


def input_changes(recorded: dict, fresh: dict) -> list[str]:
    """What differs between the recorded and the current spec, sources and versions."""
    causes = []
    old_spec, new_spec = recorded.get("spec") or {}, fresh.get("spec") or {}
    if old_spec.get("sha256") != new_spec.get("sha256"):
        changed = dict_changes(old_spec.get("resolved"), new_spec.get("resolved"))
        if changed:
            causes.append(f"spec changed: {_listed(changed)}")
        else:
            causes.append("spec file changed (comments or layout only: same resolved spec)")
    old_sources, new_sources = recorded.get("sources") or {}, fresh.get("sources") or {}
    for vid in sorted(set(old_sources) | set(new_sources)):
        old, new = old_sources.get(vid), new_sources.get(vid)
        if old is None:
            causes.append(f"source {vid!r} is new")
        elif new is None:
            causes.append(f"source {vid!r} is no longer used")
        elif old.get("sha256") != new.get("sha256"):
            causes.append(
                f"source {vid!r} changed (sha256 {_short(old.get('sha256'))} -> "
                f"{_short(new.get('sha256'))})"
            )
    old_versions, new_versions = recorded.get("versions") or {}, fresh.get("versions") or {}
    moved = [
        f"{package} {old_versions.get(package, 'not recorded')} -> "
        f"{new_versions.get(package, 'not recorded')}"
        for package in sorted(set(old_versions) | set(new_versions))
        if old_versions.get(package) != new_versions.get(package)
    ]
    if moved:
        causes.append(f"package versions changed: {_listed(moved)}")
    return causes


def output_changes(
    recorded_outputs: dict, fresh: dict, out_dir: Path, scratch: Path
) -> tuple[list[str], list[str]]:
    """How each recorded output differs from the rebuilt one and from the file in
    ``out_dir``; and the names of the files that differ."""
    fresh_outputs = fresh.get("outputs") or {}
    causes, changed = [], []
    for file, sha in sorted(recorded_outputs.items()):
        on_disk = out_dir / file
        if fresh_outputs.get(file) != sha:
            causes.append(f"{file} rebuilt with other bytes")
        elif not on_disk.is_file():
            causes.append(f"{file} is missing")
        elif manifest.sha256_file(on_disk) != sha:
            causes.append(f"{file} was changed after it was built")
        else:
            continue
        changed.append(file)
    return causes, changed


def dict_changes(old, new, where: str = "") -> list[str]:
    """``key.path: old -> new`` for every value that differs between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{where}.{key}" if where else str(key)
            out += dict_changes(old.get(key), new.get(key), path)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += dict_changes(a, b, f"{where}[{i}]")
        return out
    if old == new:
        return []
    return [f"{where or '<spec>'} {_value(old)} -> {_value(new)}"]


def _value(value) -> str:
    import json

    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "none"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


# ------------------------------------------------------------------ pixels


def compare_pixels(old_path: Path, new_path: Path) -> tuple[PixelReport, bytes]:
    """Pixel statistics of two raster files, and a PNG showing where they differ."""
    import numpy as np

    old, new = _rgb(old_path), _rgb(new_path)
    sizes = ((old.shape[1], old.shape[0]), (new.shape[1], new.shape[0]))
    old, new = _same_size(old, new)
    difference = np.abs(old.astype(np.int16) - new.astype(np.int16)).max(axis=2)
    report = PixelReport(
        file=old_path.name,
        share_changed=float(np.count_nonzero(difference)) / difference.size,
        largest=int(difference.max()),
        ssim=_ssim(old, new),
        sizes=sizes,
    )
    return report, difference_image(old, difference)


def _rgb(path: Path):
    import numpy as np

    from voxspec.provenance import open_image

    with open_image(path) as image:
        if image.mode in ("RGBA", "LA", "P"):  # figures are opaque; flatten onto white
            from PIL import Image

            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, "white")
            image = Image.alpha_composite(background, rgba)
        return np.asarray(image.convert("RGB"))


def _same_size(a, b):
    """Both images on the larger canvas (white where one has no pixels)."""
    import numpy as np

    height, width = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])

    def padded(image):
        canvas = np.full((height, width, 3), 255, dtype=np.uint8)
        canvas[: image.shape[0], : image.shape[1]] = image
        return canvas

    return padded(a), padded(b)


def _ssim(a, b) -> float | None:
    if min(a.shape[:2]) < 7:  # SSIM's smallest window
        return None
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


def difference_image(old, difference) -> bytes:
    """The old figure faded to light grey, with every changed pixel in red: the stronger
    the change, the deeper the red (even a change of one level stays visible)."""
    import io

    import numpy as np
    from PIL import Image

    grey = old.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    faded = 255 - 0.3 * (255 - grey)
    canvas = np.repeat(faded[..., None], 3, axis=2)
    changed = difference > 0
    if changed.any():
        strength = 0.4 + 0.6 * difference[changed] / difference.max()
        red = np.array([220, 20, 20], dtype=np.float32)
        canvas[changed] = canvas[changed] * (1 - strength[:, None]) + red * strength[:, None]
    buffer = io.BytesIO()
    Image.fromarray(canvas.round().astype(np.uint8), "RGB").save(buffer, format="png")
    return buffer.getvalue()
